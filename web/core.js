// Shared page state, the API call wrapper that says errors, and the attribute vocabulary.
import { has, t } from "./i18n.js";
import { errorText, h, showError, toast } from "./ui.js";

export const state = { config: null, api: null, user: null, project: null, health: null, onSignOut: null };

export const ATTRIBUTES = {
  gender: ["female", "male", "non-binary"],
  ageRange: ["teen", "young-adult", "adult", "middle-aged", "senior"],
  ethnicity: ["asian", "southeast asian", "south asian", "black", "white", "hispanic", "middle eastern", "mixed"],
  bodyType: ["slim", "average", "athletic", "curvy", "plus-size"],
  hairStyle: ["short", "long straight", "long wavy", "curly", "bob", "bun", "hijab", "bald"],
  hairColor: ["black", "brown", "blonde", "red", "grey", "dyed"],
  eyeColor: ["brown", "black", "blue", "green", "hazel"],
  skinTone: ["fair", "light", "medium", "tan", "brown", "dark"],
  style: ["professional", "casual", "formal", "sporty", "traditional", "fashion", "creative"],
  // Visual attributes of issue 30: closed sets (the API's enums; chalicelib/avatars/vocabulary.py).
  hairLength: ["bald", "short", "medium", "long"],
  glasses: ["none", "glasses", "sunglasses"],
  facialHair: ["none", "stubble", "beard", "mustache"],
  clothingStyle: ["casual", "formal", "business", "sporty", "streetwear"],
  background: ["plain", "indoor", "nature", "city"],
  expression: ["smiling", "neutral", "serious", "laughing"],
};
export const PERSONA_KEYS = ["personaName", "personaAge", "personaPersonality", "personaBackground"];
export const APPS = [["pose-generator", "Pose Generator"], ["video-generator", "Video Generator"],
  ["poster-maker", "Poster Maker"]];  // product names: not translated

/** Words for an attribute value in the page's language ("young-adult" → "Young adult" / "Dewasa muda");
 * a value the catalogue does not know (free text from an app) is shown capitalised. */
export const pretty = (value) => (has(`value.${value}`) ? t(`value.${value}`) : String(value).replace(/^./, (c) => c.toUpperCase()));

/** Await an API call; on failure say why (in the open dialog, else a toast) and rethrow, marked as said. */
export async function call(promise, { quiet404 = false } = {}) {
  try {
    return await promise;
  } catch (error) {
    if (error.status === 401) {
      // Once: a page that asked several things at once (projects and "shared with me") gets several 401s,
      // and the first already signed out (state.api is gone).
      if (state.api) {
        toast(t("error.session"), "error");
        state.onSignOut?.();
      }
    } else if (!(quiet404 && error.status === 404)) showError(errorText(error));
    error.shown = true;
    throw error;
  }
}

/** An event handler that never leaks an uncaught error: what was not yet said is said. */
export const safe = (fn) => async (...args) => {
  try { return await fn(...args); } catch (error) { if (!error?.shown) showError(errorText(error)); }
};

export function select(id, options, value = "", attrs = {}) {
  return h("select", { id, ...attrs }, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
}

/** How many images one job makes (the API takes 1–4; each becomes its own avatar). */
export const imageCount = (id) => select(id, [1, 2, 3, 4].map((n) => [String(n), t("count.images", { count: n })]), "1");

/** Persona and look inputs shared by the generate form and the edit form (ids prefixed). The persona's
 * name is not one of them: the forms have one name field, the avatar's (see personaNameFor). */
export function traitInputs(prefix) {
  const inputs = {
    personaAge: h("input", { id: `${prefix}-persona-age`, type: "number", min: 1, max: 120, inputmode: "numeric" }),
    personaPersonality: h("input", { id: `${prefix}-persona-personality`, placeholder: t("form.personality_placeholder") }),
    personaBackground: h("textarea", { id: `${prefix}-persona-background`, rows: 2, maxlength: 1000,
      placeholder: t("form.background_placeholder") }),
  };
  for (const [key, values] of Object.entries(ATTRIBUTES)) {
    inputs[key] = select(`${prefix}-${key}`, [["", t("form.any")], ...values.map((v) => [v, pretty(v)])]);
  }
  return inputs;
}

export function fill(inputs, values) {
  for (const [key, value] of Object.entries(values)) {
    const el = inputs[key];
    if (!el) continue;
    const text = value === null || value === undefined ? "" : Array.isArray(value) ? value.join(", ") : String(value);
    if (el.tagName === "SELECT" && text && ![...el.options].some((o) => o.value === text)) el.append(h("option", { value: text }, pretty(text)));
    el.value = text;
  }
}

/** Form values as the API takes them; with `clear`, empty fields are sent as null (an edit clears them). */
export function collect(inputs, { clear = false } = {}) {
  const body = {};
  for (const [key, el] of Object.entries(inputs)) {
    const value = el.value.trim();
    if (!value) { if (clear && key !== "name" && key !== "prompt") body[key] = null; continue; }
    if (key === "personaAge") body[key] = Number(value);
    else if (key === "personaPersonality") body[key] = value.split(",").map((s) => s.trim()).filter(Boolean).slice(0, 10);
    else body[key] = value;
  }
  return body;
}

/** The persona and look fields in two fieldsets (the edit form), or with `collapsed` (an id prefix)
 * in two closed <details> (the generate panel: the prompt comes first). */
export function traitSections(inputs, { collapsed = "" } = {}) {
  const field = (key, wide = false) => h("label", { class: wide ? "span-all" : null }, h("span", {}, labelFor(key)), inputs[key]);
  if (collapsed) {
    return [
      h("details", { class: "section", id: `${collapsed}-persona-section` }, h("summary", {}, t("form.persona")),
        h("div", { class: "form-grid" }, field("personaAge"), field("personaPersonality", true), field("personaBackground", true))),
      h("details", { class: "section", id: `${collapsed}-look-section` }, h("summary", {}, t("form.look")),
        h("div", { class: "form-grid" }, Object.keys(ATTRIBUTES).map((k) => field(k)))),
    ];
  }
  return [
    h("fieldset", { class: "section" }, h("legend", {}, t("form.persona")),
      h("div", { class: "form-grid" }, field("personaAge"), field("personaPersonality", true),
        field("personaBackground", true))),
    h("fieldset", { class: "section" }, h("legend", {}, t("form.look")),
      h("div", { class: "form-grid" }, Object.keys(ATTRIBUTES).map((k) => field(k)))),
  ];
}

const FORM_LABELS = { personaName: "form.persona_name", personaPersonality: "form.personality" };
const labelFor = (key) => t(FORM_LABELS[key] || `field.${key}`);

/** How long a presigned URL lives, in seconds (its X-Amz-Expires; the API's default otherwise). */
export function urlLifetime(url) {
  try { return Number(new URL(url).searchParams.get("X-Amz-Expires")) || 900; } catch { return 900; }
}

/** An avatar image whose URL has expired (a page left open, a laptop woken up) asks the API for a
 * fresh one, once: `pick` takes the URL from the avatar JSON. Returns the image. */
export function resignOnError(img, avatarId, pick) {
  img.addEventListener("error", async () => {
    if (img.dataset.resigned || !state.api) return;
    img.dataset.resigned = "1";
    try {
      const url = pick(await state.api.get(`/avatars/${avatarId}`));
      if (url) { img.removeAttribute("src"); img.src = url; }
    } catch { /* deleted meanwhile, or offline: the broken image stays */ }
  });
  return img;
}

/** The persona's name a form sends with its one name field: a persona named like its avatar (or not
 * named) follows the new name; one named apart (a preset "Corporate Executive" whose persona is
 * "Sarah") keeps its own. */
export function personaNameFor(before, name) {
  return !before.personaName || before.personaName === before.name ? name : before.personaName;
}

/** Image shown for an avatar: the cropped display copy when the API has one. */
export const displayUrl = (avatar) => avatar.displayUrl || avatar.imageUrl;

/** On this stack generations are drawn by the offline placeholder provider (GET /health says). */
export const offline = () => state.health?.provider === "offline";
export const drawnOffline = (avatar) => offline() && avatar.sourceType !== "uploaded";
