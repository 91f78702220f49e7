// The generate side panel (beside the grid on a desktop, a full-width sheet on a phone): the prompt first,
// the presets as a strip of thumbnails, a persona example, and the persona and the look collapsed.
import { ATTRIBUTES, call, collect, fill, imageCount, offline, personaNameFor, pretty, safe, select, state, traitInputs,
  traitSections } from "./core.js";
import { t } from "./i18n.js";
import { h, rich, toast } from "./ui.js";

/** The look each persona example starts from (the API's examples carry a persona only). Unknown
 * examples get a look from their category and age. */
const PERSONA_LOOKS = {
  "ceo-sarah": ["female", "asian", "professional"], "engineer-arif": ["male", "southeast asian", "casual"],
  "nurse-fitri": ["female", "southeast asian", "professional"], "banker-tom": ["male", "white", "formal"],
  "student-nina": ["female", "southeast asian", "casual"], "traveler-leo": ["male", "mixed", "casual"],
  "parent-rini": ["female", "southeast asian", "casual"], "gamer-kevin": ["male", "asian", "casual"],
  "runner-putri": ["female", "southeast asian", "sporty"], "boxer-agus": ["male", "southeast asian", "sporty"],
  "swimmer-mei": ["female", "asian", "sporty"], "designer-vera": ["female", "white", "fashion"],
  "stylist-reza": ["male", "southeast asian", "fashion"], "model-kirana": ["female", "southeast asian", "fashion"],
  "dancer-laras": ["female", "southeast asian", "traditional"], "weaver-maria": ["female", "southeast asian", "traditional"],
  "elder-ketut": ["male", "southeast asian", "traditional"], "painter-bayu": ["male", "southeast asian", "creative"],
  "writer-sari": ["female", "southeast asian", "creative"], "chef-hana": ["female", "asian", "creative"],
  "podcaster-dani": ["male", "southeast asian", "creative"], "scientist-lia": ["female", "asian", "professional"],
};
const CATEGORY_STYLE = { professional: "professional", casual: "casual", sports: "sporty", fashion: "fashion",
  traditional: "traditional", creative: "creative" };

function ageRange(age) {
  if (!age) return "";
  return age < 18 ? "teen" : age < 30 ? "young-adult" : age < 45 ? "adult" : age < 60 ? "middle-aged" : "senior";
}

/** Persona, look and a starter prompt from a persona example. */
export function fromPersona(persona) {
  const [gender, ethnicity, style] = PERSONA_LOOKS[persona.id] || ["", "", CATEGORY_STYLE[persona.category] || ""];
  const who = [persona.personaAge ? `${persona.personaAge}-year-old` : "", gender === "non-binary" ? "person" : gender === "male" ? "man" : gender === "female" ? "woman" : "person"]
    .filter(Boolean).join(" ");
  const traits = (persona.personaPersonality || []).join(" and ");
  const what = (persona.personaBackground || "").replace(/\.$/, "").replace(/^./, (c) => c.toLowerCase());
  const prompt = `portrait of a ${traits ? `${traits} ` : ""}${who}${what ? `, ${what}` : ""}, natural light`;
  return {
    name: persona.personaName, prompt: prompt.slice(0, 600),
    personaName: persona.personaName, personaAge: persona.personaAge, personaPersonality: persona.personaPersonality,
    personaBackground: persona.personaBackground,
    gender, ethnicity, style, ageRange: ageRange(persona.personaAge),
  };
}

/** The preset's fields as the form holds them. */
function fromPreset(preset) {
  const out = { name: preset.name, prompt: preset.prompt };
  for (const key of ["personaName", "personaAge", "personaPersonality", "personaBackground", ...Object.keys(ATTRIBUTES)]) {
    if (preset[key] !== null && preset[key] !== undefined) out[key] = preset[key];
  }
  return out;
}

const phone = () => matchMedia("(max-width: 700px)").matches;

/** Start a generation from a preset. POST /presets/{id}/generate reaches only the caller's own
 * projects (docs/teams.md), so in a project shared with them (issue 30: it has a homeUserId) the
 * preset's fields, with the person's changes, go through the project's own generate route. */
function generateFromPreset(view, preset, body = {}) {
  const key = { "Idempotency-Key": crypto.randomUUID() };
  if (view.project.homeUserId) {
    return state.api.post(`/projects/${view.project.id}/avatars/generate`, { ...fromPreset(preset), ...body }, key);
  }
  return state.api.post(`/presets/${preset.id}/generate`, { projectId: view.project.id, ...body }, key);
}

/** Close the generate panel (if open); the focus goes back to the Generate button. */
export function closeGenerate() {
  const panel = document.getElementById("generate-panel");
  if (!panel) return;
  panel.remove();
  document.getElementById("main").classList.remove("with-panel");
  document.getElementById("generate-button")?.setAttribute("aria-expanded", "false");
  document.getElementById("generate-button")?.focus();
}

export async function showGenerate(view, { preset = null } = {}) {
  document.getElementById("generate-panel")?.remove();
  const inputs = {
    prompt: h("textarea", { id: "gen-prompt", rows: 3, maxlength: 600, required: true, minlength: 3,
      placeholder: t("generate.prompt_placeholder"), "aria-describedby": "gen-prompt-help" }),
    name: h("input", { id: "gen-name", maxlength: 100, required: true, placeholder: t("generate.name_placeholder"), autocomplete: "off" }),
    ...traitInputs("gen"),
  };
  let fromPresetId = preset?.id || null;
  let fromPresetItem = preset;
  // What the form was filled from (a preset, a persona example): its persona's name goes with the one
  // name field unless the person types another (personaNameFor).
  let origin = preset ? fromPreset(preset) : {};
  const presetNote = h("p", { class: "note", id: "preset-note", hidden: !preset });
  const setPreset = (p) => {
    fromPresetId = p?.id || null;
    fromPresetItem = p || null;
    if (!p) origin = {};
    presetNote.hidden = !p;
    presetNote.replaceChildren(...(p ? [...rich("generate.from_preset", { preset: h("strong", {}, p.name) }), " ",
      h("button", { type: "button", class: "link", onclick: () => setPreset(null) }, t("generate.scratch"))] : []));
  };
  if (preset) { fill(inputs, fromPreset(preset)); setPreset(preset); }

  // Errors are said in the panel's own line (ui.showError finds it while the focus is in the panel).
  const error = h("p", { class: "dialog-error", id: "generate-error", role: "alert", hidden: true });
  const clearError = () => { error.hidden = true; error.textContent = ""; };
  const submit = h("button", { type: "submit", id: "start-generation" }, t("action.generate"));
  const count = imageCount("gen-count");
  const started = (job, name) => {
    toast(t("generate.started", { name }), "ok");
    view.renderJob(job);
    state.poll?.();
    // On a phone the sheet covers the grid: it closes so the new tiles show. Beside the grid it stays.
    if (phone()) closeGenerate();
  };
  const start = safe(async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    clearError();
    submit.disabled = true;  // one click, one job (and the key below makes a network retry harmless)
    for (const el of Object.values(inputs)) el.removeAttribute("aria-invalid");
    try {
      const body = { ...collect(inputs), numImages: Number(count.value) };
      body.personaName = personaNameFor(origin, body.name);
      const job = fromPresetId
        ? await call(generateFromPreset(view, fromPresetItem, body))
        : await call(state.api.post(`/projects/${view.project.id}/avatars/generate`, body, { "Idempotency-Key": crypto.randomUUID() }));
      started(job, body.name);
    } catch (failure) {
      // A refused prompt names the field it read the refusal in: mark it and put the cursor there.
      const field = failure.code === "prompt_rejected" && inputs[failure.details?.field];
      if (field) {
        field.closest("details")?.setAttribute("open", "");
        field.setAttribute("aria-invalid", "true"); field.setAttribute("aria-errormessage", "generate-error"); field.focus();
      }
      throw failure;
    } finally { submit.disabled = false; }
  });

  const personas = h("select", { id: "persona-picker", "aria-describedby": "persona-help" }, h("option", { value: "" }, t("generate.choose_example")));
  state.api.get("/persona-examples?limit=100").then((page) => {
    for (const p of page.items) personas.append(h("option", { value: p.id, dataset: { json: JSON.stringify(p) } },
      t("generate.example_option", { name: p.personaName, age: p.personaAge, what: p.personaBackground || pretty(p.category) })));
  }).catch(() => personas.append(h("option", { value: "", disabled: true }, t("generate.examples_failed"))));
  personas.addEventListener("change", () => {
    const option = personas.selectedOptions[0];
    if (!option?.dataset.json) return;
    const persona = JSON.parse(option.dataset.json);
    setPreset(null);
    origin = fromPersona(persona);
    fill(inputs, origin);
    state.api.post(`/persona-examples/${persona.id}/use`).catch(() => {});
  });

  const offlineNote = offline() ? h("p", { class: "note warn", id: "offline-note" },
    h("strong", {}, t("generate.offline_lead")), " ", t("generate.offline_text"), " ", t("generate.offline_help")) : null;
  const gallery = h("div", { id: "preset-gallery" }, h("p", { class: "loading" }, t("generate.loading_presets")));
  const openForm = (p) => {
    fill(inputs, Object.fromEntries(Object.keys(inputs).map((k) => [k, ""])));
    origin = fromPreset(p);
    fill(inputs, origin);
    setPreset(p);
    inputs.name.focus();
    inputs.name.select();
  };
  const form = h("form", { id: "generate-form", class: "generate-form", onsubmit: start },
    presetNote,
    h("label", {}, h("span", {}, t("generate.describe_label")), inputs.prompt,
      h("small", { id: "gen-prompt-help", class: "meta" }, t("generate.describe_help"))),
    h("div", { class: "form-grid" },
      h("label", {}, h("span", {}, t("field.name")), inputs.name),
      h("label", {}, h("span", {}, t("generate.count")), count)),
    h("section", { class: "preset-strip", "aria-labelledby": "presets-title" },
      h("h3", { id: "presets-title" }, t("generate.presets")), gallery),
    h("label", {}, h("span", {}, t("generate.example_label")), personas,
      h("small", { id: "persona-help", class: "meta" }, t("generate.example_help"))),
    traitSections(inputs, { collapsed: "gen" }),
    h("div", { class: "dialog-footer" }, submit,
      h("span", { class: "meta" }, offline() ? t("generate.offline_title") : t("generate.flux"))));
  const panel = h("aside", { class: "side-panel", id: "generate-panel", "aria-labelledby": "generate-title",
    onkeydown: (e) => { if (e.key === "Escape" && !e.defaultPrevented) { e.preventDefault(); closeGenerate(); } } },
  h("div", { class: "side-panel-head" },
    h("h2", { id: "generate-title" }, t("generate.title")),
    h("button", { type: "button", class: "ghost small icon", id: "close-generate", "aria-label": t("action.close"), onclick: closeGenerate }, "✕")),
  error, offlineNote, form);
  // Below the sticky header on a desktop (the sheet on a phone covers it).
  panel.style.setProperty("--panel-top", `${document.querySelector(".topbar")?.getBoundingClientRect().bottom || 0}px`);
  document.getElementById("main").append(panel);
  document.getElementById("main").classList.add("with-panel");  // the page makes room beside it
  document.getElementById("generate-button")?.setAttribute("aria-expanded", "true");
  (preset ? inputs.name : inputs.prompt).focus();
  loadGallery(gallery, view, openForm, started);
}

async function loadGallery(gallery, view, openForm, started, category = "") {
  const categories = ["", "professional", "casual", "sports", "fashion", "traditional", "creative"];
  const picker = select("preset-category", categories.map((c) => [c, c ? pretty(c) : t("generate.all_categories")]), category);
  picker.addEventListener("change", () => loadGallery(gallery, view, openForm, started, picker.value));
  let page;
  try { page = await call(state.api.get(`/presets?limit=100${category ? `&category=${category}` : ""}`)); } catch { return; }
  const generateNow = (preset) => safe(async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      const job = await call(generateFromPreset(view, preset));
      started(job, preset.name);
    } finally { button.disabled = false; }
  });
  const cards = page.items.map((preset) => h("article", { class: "preset", dataset: { presetId: preset.id } },
    preset.thumbnailUrl ? h("img", { src: preset.thumbnailUrl, alt: "", width: 300, height: 300, loading: "lazy", decoding: "async" })
      : h("div", { class: "thumb placeholder" }, t("generate.no_preview")),
    h("div", { class: "body" }, h("strong", { class: "ellipsis", title: preset.name }, preset.name),
      h("span", { class: "meta" }, t("generate.preset_meta", { category: pretty(preset.category), count: preset.popularity })),
      h("div", { class: "row" },
        h("button", { type: "button", class: "small use-preset", "aria-label": t("generate.use_preset_named", { name: preset.name }), onclick: () => openForm(preset) }, t("generate.use_preset")),
        h("button", { type: "button", class: "ghost small generate-now", "aria-label": t("generate.now_named", { name: preset.name }), onclick: generateNow(preset) }, t("generate.now"))))));
  if (!gallery.isConnected) return;
  gallery.replaceChildren(h("label", { class: "inline" }, h("span", {}, t("generate.category")), picker),
    cards.length ? h("div", { class: "presets" }, cards) : h("p", { class: "empty" }, t("generate.no_presets")));
}
