// The page's words in English and Bahasa Indonesia: every string comes from a catalogue (web/i18n-en.js, web/i18n-id.js),
// chosen from the browser's languages until the person picks one (remembered in localStorage).
// Dates and numbers go through Intl in the same language, and the API is asked in it (Accept-Language).
import en from "./i18n-en.js";
import id from "./i18n-id.js";

const CATALOGUES = { en, id };
export const LANGUAGES = [["en", "English"], ["id", "Bahasa Indonesia"]];
const KEY = "avatar-creator.language";

function initial() {
  const stored = localStorage.getItem(KEY);
  if (stored in CATALOGUES) return stored;
  for (const tag of navigator.languages?.length ? navigator.languages : [navigator.language || "en"]) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (base in CATALOGUES) return base;
    if (base === "ms") return "id";  // Malay readers read Indonesian more easily than English
  }
  return "en";
}

let current = initial();
document.documentElement.lang = current;

export const lang = () => current;
/** Whether the catalogue has `key` (data values without a word of their own are shown as they are). */
export const has = (key) => key in en;

export function setLang(code) {
  if (!(code in CATALOGUES)) return;
  current = code;
  localStorage.setItem(KEY, code);
  document.documentElement.lang = code;
  translateStatic();
}

/** The message `key` with its {placeholders} filled; a message with plural forms ({one, other})
 * takes the form for `params.count`. An unknown key is a bug: said in the console (the e2e tests
 * fail on console errors) and shown as the key, never as blank. */
export function t(key, params = {}) {
  let text = CATALOGUES[current][key] ?? en[key];
  if (text === undefined) {
    console.error(`i18n: no message "${key}"`);
    return key;
  }
  if (typeof text === "object") text = text[new Intl.PluralRules(current).select(params.count ?? 0)] ?? text.other;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? format(params[name]) : whole));
}

const format = (value) => (typeof value === "number" ? number(value) : String(value));

export const number = (n, options) => new Intl.NumberFormat(current, options).format(n);
export const dateTime = (value, options = { dateStyle: "medium", timeStyle: "short" }) =>
  new Intl.DateTimeFormat(current, options).format(new Date(value));
export const date = (value) => new Intl.DateTimeFormat(current, { dateStyle: "medium" }).format(new Date(value));

/** "3 min ago" / "3 menit yang lalu", in the page's language. */
export function ago(seconds) {
  const words = new Intl.RelativeTimeFormat(current, { numeric: "auto" });
  if (seconds < 60) return t("time.just_now");
  if (seconds < 3600) return words.format(-Math.floor(seconds / 60), "minute");
  return words.format(-Math.floor(seconds / 3600), "hour");
}

/** The static page (index.html): data-i18n sets the text, data-i18n-<attr> an attribute. */
export function translateStatic(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("*")) {
    for (const { name, value } of [...el.attributes]) {
      if (name.startsWith("data-i18n-")) el.setAttribute(name.slice("data-i18n-".length), t(value));
    }
  }
  document.title = t("app.title");
}
