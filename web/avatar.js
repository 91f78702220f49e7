// One avatar's lightbox: the face large with its prompt and seed, download, ← / → between avatars, its
// details (and editing them), the thumbnail crop, usage; and a developer view (ids, raw JSON, record a use).
// Its address is "#/projects/{pid}/avatars/{aid}" ("…/developer" for the developer view).
import { APPS, ATTRIBUTES, PERSONA_KEYS, call, collect, displayUrl, drawnOffline, fill, imageCount, pretty, resignOnError, safe, select, state,
  personaNameFor, traitInputs, traitSections } from "./core.js";
import { dateTime, number, t } from "./i18n.js";
import { clearDialogError, closeDialog, h, label, openDialog, rich, setDialogUrl, toast, when } from "./ui.js";
import { suggestionPanel } from "./suggestions.js";
import { sharePanel } from "./share.js";
import { avatarExport } from "./export.js";
import { can } from "./members.js";
import { historySection, lineageSection } from "./history.js";

const sourceWords = (type) => ({ uploaded: t("source.uploaded_long"), text_to_image: t("source.text_to_image"),
  preset: t("source.preset_long"), image_to_image: t("source.image_to_image") })[type];

/** Restyle chips: each sets the API's `style` and a prompt phrase the person can then change (the
 * phrase stays English: it is the image model's prompt). A function: the words follow the language. */
export const restyles = () => [
  ["watercolor", t("restyle.watercolor"), "soft watercolor painting, loose brush strokes, paper texture"],
  ["oil-painting", t("restyle.oil"), "classical oil painting, rich impasto brush work, warm light"],
  ["anime", t("restyle.anime"), "anime illustration, clean line art, cel shading"],
  ["cinematic", t("restyle.cinematic"), "cinematic film still, dramatic lighting, shallow depth of field"],
  ["studio-portrait", t("restyle.studio"), "studio portrait, softbox lighting, plain backdrop"],
  ["pixel-art", t("restyle.pixel"), "pixel art portrait, limited palette, crisp pixels"],
];

/** The address of an avatar's lightbox (and of its developer view). */
export const avatarUrl = (projectId, avatarId, developer = false) => `#/projects/${projectId}/avatars/${avatarId}${developer ? "/developer" : ""}`;

/** The ready avatars of the grid, in its order: the lightbox steps through them. */
const neighbours = () => [...document.querySelectorAll('#avatar-grid .avatar-card[data-status="ready"]')].map((c) => c.dataset.avatarId);

/** One avatar's lightbox; `edit` opens it on the form (the card's Edit button), `developer` on the
 * developer view (its own address). */
export async function showAvatar(view, avatar, { edit = false, developer = false } = {}) {
  let fresh = await call(state.api.get(`/avatars/${avatar.id}`));
  // Issue 30: a viewer of a shared project sees, downloads, exports and uses; editing is for editors.
  const editor = can(view.project, "editor");
  const url = avatarUrl(view.project.id, fresh.id);
  const picture = h("div", { class: "detail-image" });
  const info = h("div", { class: "detail-info" });
  const detail = h("div", { class: "avatar-detail" }, picture, info);
  const history = h("div", { id: "usage-history" }, h("p", { class: "loading" }, t("usage.loading")));

  const changed = (updated) => {
    fresh = updated;
    document.getElementById("dialog-title").textContent = updated.name;
    if (document.querySelector(`.avatar-card[data-avatar-id="${updated.id}"]`)) view.upsertCard(updated);
    versions.refresh();  // an edit, an accepted suggestion, a crop or a restore is a new version
  };
  // Issue 29: made once per dialog, kept across redraws. A lineage link opens that avatar in this dialog.
  const versions = historySection(fresh, view.project, (updated) => { changed(updated); drawFacts(); });
  const lineage = lineageSection(fresh, (id) => {
    document.getElementById("dialog").removeEventListener("keydown", step);
    safe(() => showAvatar(view, { id }))();
  });

  // ← / → (and the arrows over the picture) go to the neighbouring avatar of the grid, in the same
  // lightbox; its address follows, so Back still closes it.
  const go = (delta) => {
    const ids = neighbours();
    const at = ids.indexOf(fresh.id);
    const next = at < 0 ? null : ids[at + delta];
    if (!next) return false;
    document.getElementById("dialog").removeEventListener("keydown", step);
    safe(() => showAvatar(view, { id: next }))();
    return true;
  };
  const step = (event) => {
    if (!["ArrowLeft", "ArrowRight"].includes(event.key) || event.target.closest("input, textarea, select, [role=group], .crop-editor")) return;
    if (detail.classList.contains("developer")) return;
    if (go(event.key === "ArrowRight" ? 1 : -1)) event.preventDefault();
  };

  function drawPicture() {
    const ids = neighbours();
    const at = ids.indexOf(fresh.id);
    const arrow = (delta, cls, key, glyph) => (at >= 0 && ids[at + delta]
      ? h("button", { type: "button", class: `step ${cls}`, id: `lightbox-${cls}`, "aria-label": t(key), onclick: () => go(delta) }, glyph) : null);
    picture.replaceChildren(
      h("figure", { class: "face lightbox" },
        h("div", { class: "lightbox-stage" },
          resignOnError(h("img", { class: "preview", id: "lightbox-image", src: displayUrl(fresh), alt: t("avatar.picture_alt", { name: fresh.name }),
            width: fresh.width || null, height: fresh.height || null }), fresh.id, displayUrl),
          arrow(-1, "prev", "lightbox.previous", "‹"), arrow(1, "next", "lightbox.next", "›")),
        drawnOffline(fresh) ? h("figcaption", { class: "note warn", id: "offline-caption" },
          h("strong", {}, t("card.offline"), ". "), t("avatar.offline_note")) : null),
      h("div", { class: "row" },
        fresh.status === "ready" ? h("button", { type: "button", class: "secondary", id: "download-avatar", onclick: safe(download) }, t("lightbox.download")) : null,
        "crop" in fresh && editor ? h("button", { type: "button", class: "secondary", id: "crop-avatar", onclick: () => cropEditor(picture, fresh, changed, drawPicture) }, t("crop.open")) : null,
        editor && h("button", { type: "button", class: "ghost", id: "make-variations", onclick: safe(async (event) => {
          event.currentTarget.disabled = true;
          const out = await call(state.api.post(`/avatars/${fresh.id}/variations`, { count: 2 }, { "Idempotency-Key": crypto.randomUUID() }));
          closeDialog();
          toast(t("avatar.variations_started", { count: out.items.length }), "ok");
          out.items.forEach((job) => view.renderJob(job));
          state.poll?.();
        }) }, t("avatar.variations")),
        fresh.status === "ready" && editor ? h("button", { type: "button", class: "ghost", id: "restyle-avatar", onclick: drawRestyle }, t("restyle.button")) : null,
        editor && h("button", { type: "button", class: "ghost danger-text", id: "delete-avatar", onclick: safe(async () => {
          await view.deleteAvatar(fresh);
        }) }, t("action.delete"))),
      fresh.status === "ready" ? avatarExport(fresh) : "");  // replaceChildren would print a null
  }

  /** The prompt and the seed under the picture, each with Copy: what a person needs to make another like it. */
  function recipe() {
    const rows = [["prompt", t("avatar.generated_prompt"), fresh.prompt], ["seed", t("field.seed"), fresh.seed]].filter(([, , v]) => present(v));
    if (!rows.length) return null;
    return h("dl", { class: "facts recipe", id: "recipe" }, rows.map(([key, name, v]) => h("div", { class: `fact ${key}` }, h("dt", {}, name),
      h("dd", { class: key === "prompt" ? "prompt" : null }, h("span", { class: "value" }, String(v)), " ", copyButton(String(v), name)))));
  }

  /** The full image, saved under the avatar's name (fetched first: a cross-origin link cannot name the file). */
  async function download() {
    const current = await call(state.api.get(`/avatars/${fresh.id}`));  // a fresh URL: the shown one may have expired
    let blob;
    try {
      const response = await fetch(current.imageUrl);
      if (!response.ok) throw new Error(String(response.status));
      blob = await response.blob();
    } catch { throw Object.assign(new Error("download failed"), { status: 0 }); }
    const ext = { "image/png": "png", "image/webp": "webp" }[blob.type] || (current.format === "png" || current.format === "webp" ? current.format : "jpg");
    const link = h("a", { href: URL.createObjectURL(blob), download: `${fileName(current.name)}.${ext}`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    toast(t("lightbox.downloaded", { name: current.name }), "ok");
  }

  function drawFacts() {
    const rows = (keys) => keys.filter((k) => present(fresh[k]))
      .map((k) => h("div", { class: "fact" }, h("dt", {}, label(k)), h("dd", {}, k === "personaAge" ? t("avatar.years", { count: fresh[k] }) : show(k, fresh[k]))));
    const persona = rows(PERSONA_KEYS);
    const look = rows(Object.keys(ATTRIBUTES));
    // Parts with nothing to show are null, which replaceChildren would print as the word "null".
    info.replaceChildren(...[
      h("div", { class: "row spread" }, h("p", { class: "meta", id: "avatar-source" },
        rich(fresh.sourceAvatarId ? "avatar.source_from" : "avatar.source", { source }, { what: sourceWords(fresh.sourceType) || fresh.sourceType, when: when(fresh.createdAt) })),
        editor && h("button", { type: "button", class: "secondary", id: "edit-avatar", onclick: drawForm }, t("avatar.edit_details"))),
      recipe(),
      h("h3", {}, t("form.persona")), persona.length ? h("dl", { class: "facts" }, persona) : h("p", { class: "empty-line" }, t("avatar.no_persona")),
      h("h3", {}, t("form.look")), look.length ? h("dl", { class: "facts" }, look) : h("p", { class: "empty-line" }, t("avatar.no_look")),
      editor ? suggestionPanel(fresh, (updated) => { changed(updated); drawFacts(); }) : null,
      h("details", { class: "advanced", id: "advanced" }, h("summary", {}, t("avatar.advanced")),
        h("dl", { class: "facts" },
          [[t("avatar.size"), fresh.width && t("avatar.size_px", { width: fresh.width, height: fresh.height })],
            [t("field.format"), fresh.format && fresh.format.toUpperCase()], [t("field.bytes"), fresh.bytes && t("avatar.kb", { kb: Math.round(fresh.bytes / 1024) })]]
            .filter(([, v]) => present(v)).map(([k, v]) => h("div", { class: "fact" }, h("dt", {}, k), h("dd", {}, String(v)))))),
      fresh.status === "ready" && editor ? sharePanel(fresh) : null,
      lineage, versions,
      h("h3", {}, t("usage.title")), history,
      h("div", { class: "row" }, h("button", { type: "button", class: "ghost small", id: "open-developer", onclick: drawDeveloper }, t("dev.open")))]
      .filter((part) => part !== null));
  }

  function drawForm() {
    const inputs = { name: h("input", { id: "edit-name", maxlength: 100, required: true, autocomplete: "off" }), ...traitInputs("edit") };
    fill(inputs, fresh);
    const form = h("form", { id: "avatar-form", class: "stack", onsubmit: safe(async (event) => {
      event.preventDefault();
      clearDialogError();
      const body = collect(inputs, { clear: true });
      body.personaName = personaNameFor(fresh, body.name);
      const updated = await call(state.api.put(`/avatars/${fresh.id}`, body));
      changed(updated);
      toast(t("avatar.saved"), "ok");
      drawFacts();
      loadHistory(fresh.id, history);
      document.getElementById("edit-avatar")?.focus();
      // A filtered list re-asks the server, so the card shows (or goes) as the new attributes say.
      if (view.list?.filtered()) view.reload();
    }) },
    h("label", {}, h("span", {}, t("field.name")), inputs.name),
    traitSections(inputs),
    h("div", { class: "dialog-footer" },
      h("button", { type: "submit", id: "save-avatar" }, t("action.save")),
      h("button", { type: "button", class: "ghost", onclick: () => { drawFacts(); loadHistory(fresh.id, history); document.getElementById("edit-avatar")?.focus(); } }, t("action.cancel"))));
    info.replaceChildren(form);
    inputs.name.focus();
  }

  /** Restyle (image-to-image): a new avatar from this one's picture, a style and a prompt; this one stays. */
  function drawRestyle() {
    const prompt = h("textarea", { id: "restyle-prompt", rows: 3, maxlength: 600, minlength: 3, required: true,
      placeholder: t("restyle.prompt_placeholder"), "aria-describedby": "restyle-prompt-help" });
    const strength = h("input", { type: "range", id: "restyle-strength", min: 0.1, max: 1, step: 0.1, value: 0.6,
      "aria-describedby": "restyle-strength-help" });
    const strengthOut = h("output", { for: "restyle-strength", id: "restyle-strength-value", class: "meta" }, "0.6");
    strength.addEventListener("input", () => { strengthOut.textContent = Number(strength.value).toFixed(1); });
    const count = imageCount("restyle-count");
    let style = null;
    const chips = restyles().map(([value, text, phrase]) => h("button", { type: "button", class: "chip", "aria-pressed": "false",
      dataset: { style: value }, onclick: () => {
        const on = style !== value;
        style = on ? value : null;
        chips.forEach((c) => c.setAttribute("aria-pressed", String(c.dataset.style === style)));
        if (on) prompt.value = phrase;
      } }, text));
    const submit = h("button", { type: "submit", id: "start-restyle" }, t("restyle.button"));
    const form = h("form", { id: "restyle-form", class: "stack", onsubmit: safe(async (event) => {
      event.preventDefault();
      if (submit.disabled) return;
      clearDialogError();
      submit.disabled = true;  // one click, one job (the key makes a network retry harmless)
      try {
        const body = { prompt: prompt.value.trim(), strength: Number(strength.value), numImages: Number(count.value) };
        if (style) body.style = style;
        const job = await call(state.api.post(`/avatars/${fresh.id}/restyle`, body, { "Idempotency-Key": crypto.randomUUID() }));
        closeDialog();
        toast(t("restyle.started", { name: fresh.name }), "ok");
        view.renderJob(job);
        state.poll?.();
      } finally { submit.disabled = false; }
    }) },
    h("h3", {}, t("restyle.title")),
    h("p", { class: "meta" }, t("restyle.lead")),
    h("div", { class: "chips", role: "group", "aria-label": t("field.style") }, chips),
    h("label", {}, h("span", {}, t("restyle.prompt")), prompt,
      h("small", { id: "restyle-prompt-help", class: "meta" }, t("restyle.prompt_help"))),
    h("label", {}, h("span", {}, t("restyle.strength")), h("span", { class: "row" }, strength, strengthOut),
      h("small", { id: "restyle-strength-help", class: "meta" }, t("restyle.strength_help"))),
    h("label", {}, h("span", {}, t("restyle.images")), count),
    h("div", { class: "dialog-footer" }, submit,
      h("button", { type: "button", class: "ghost", onclick: () => { drawFacts(); loadHistory(fresh.id, history); document.getElementById("restyle-avatar")?.focus(); } }, t("action.cancel"))));
    info.replaceChildren(form);
    chips[0].focus();
  }

  /** The developer view (its own address): the ids, the avatar's JSON as the API returns it, and
   * Record use (what an app does through the API). Back to the picture restores the lightbox. */
  function drawDeveloper() {
    const app = select("usage-app", APPS);
    const action = h("input", { id: "usage-action", value: "generate", maxlength: 64 });
    const ids = [[t("avatar.id"), fresh.id], [t("dev.project_id"), fresh.projectId], [t("dev.generation_id"), fresh.generationId],
      [t("dev.source_avatar_id"), fresh.sourceAvatarId]].filter(([, v]) => present(v));
    const leave = h("button", { type: "button", class: "secondary", id: "leave-developer", onclick: () => {
      detail.classList.remove("developer");
      setDialogUrl(url);
      drawPicture();
      drawFacts();
      loadHistory(fresh.id, history);
      document.getElementById("open-developer")?.focus();
    } }, t("dev.back"));
    detail.classList.add("developer");
    setDialogUrl(avatarUrl(view.project.id, fresh.id, true));
    picture.replaceChildren();
    info.replaceChildren(h("section", { class: "dev-view stack", id: "dev-view", "aria-labelledby": "dev-title" },
      h("div", { class: "row spread" }, h("h3", { id: "dev-title" }, t("dev.title")), leave),
      h("dl", { class: "facts" }, ids.map(([k, v]) => h("div", { class: "fact" }, h("dt", {}, k), h("dd", {}, h("code", {}, v), " ", copyButton(v, k))))),
      h("p", { class: "meta" }, rich("dev.help", { call: h("code", {}, `POST /avatars/${fresh.id}/usage`) })),
      h("form", { class: "toolbar", onsubmit: safe(async (event) => {
        event.preventDefault();
        const [appId, appName] = APPS.find(([id]) => id === app.value);
        await call(state.api.post(`/avatars/${fresh.id}/usage`, { appId, appName, action: action.value.trim() || "use",
          eventId: crypto.randomUUID() }));
        toast(t("dev.recorded", { app: appName }), "ok");
        changed(await call(state.api.get(`/avatars/${fresh.id}`)));  // the card's "used N×" follows
        json.textContent = JSON.stringify(fresh, null, 2);
      }) }, h("label", {}, h("span", {}, t("dev.app")), app), h("label", {}, h("span", {}, t("dev.action")), action),
      h("button", { type: "submit", class: "secondary", id: "record-usage" }, t("dev.record"))),
      h("h4", {}, t("dev.json")),
      h("pre", { class: "json", id: "avatar-json", tabindex: 0, "aria-label": t("dev.json") })));
    const json = info.querySelector("#avatar-json");
    json.textContent = JSON.stringify(fresh, null, 2);
    leave.focus();
  }

  // The avatar a restyle came from, by name once known (it may since have been deleted).
  const source = h("span", { id: "restyled-from" }, t("avatar.another"));
  if (fresh.sourceAvatarId) {
    state.api.get(`/avatars/${fresh.sourceAvatarId}`).then((a) => { source.textContent = `“${a.name}”`; }).catch(() => {});
  }
  drawPicture();
  drawFacts();
  openDialog(fresh.name, detail, { wide: true, url, kind: "avatar" });
  const dialogEl = document.getElementById("dialog");
  dialogEl.dataset.avatarId = fresh.id;
  dialogEl.addEventListener("keydown", step);
  dialogEl.addEventListener("close", () => dialogEl.removeEventListener("keydown", step), { once: true });
  if (developer) { drawDeveloper(); return; }
  if (edit && editor) drawForm();
  else (document.getElementById("edit-avatar") || document.getElementById("download-avatar"))?.focus({ preventScroll: true });  // the face stays in view on a phone
  await loadHistory(fresh.id, history);
}

/** A file name from an avatar's name (no path separators or control characters). */
const fileName = (name) => String(name || "avatar").replace(/[\\/:*?"<>|\u0000-\u001f]+/g, "-").trim().slice(0, 100) || "avatar";

/** A small Copy button (the clipboard API; said in a toast). */
function copyButton(text, what) {
  return h("button", { type: "button", class: "ghost small copy", "aria-label": t("avatar.copy_named", { what }),
    onclick: safe(async () => { await navigator.clipboard.writeText(text); toast(t("avatar.copied", { what }), "ok"); }) }, t("avatar.copy"));
}

const present = (v) => v !== null && v !== undefined && v !== "" && !(Array.isArray(v) && !v.length);
// Attribute values are words of a vocabulary ("young-adult" → "Young adult"); persona text stays as typed.
const show = (key, v) => (Array.isArray(v) ? v.join(", ") : key in ATTRIBUTES ? pretty(v) : String(v));

async function loadHistory(avatarId, target) {
  let page;
  try { page = await call(state.api.get(`/avatars/${avatarId}/usage-history?limit=20`)); } catch { return; }
  if (!page.items.length && !page.summary.length) {
    target.replaceChildren(h("p", { class: "empty-line" }, t("usage.none")));
    return;
  }
  const total = page.summary.reduce((n, s) => n + s.count, 0);
  const summary = h("ul", { class: "usage-summary", "aria-label": t("stats.uses_by_app") }, page.summary.map((s) =>
    h("li", { dataset: { appId: s.appId } }, h("strong", {}, s.appName), h("span", { class: "count" }, `${s.count}×`),
      h("span", { class: "meta" }, t("usage.last", { when: when(s.lastUsedAt) })))));
  // Newest first, grouped by day: a timeline reads better than a flat log.
  const days = new Map();
  for (const u of page.items) {
    const day = dateTime(u.occurredAt, { weekday: "short", day: "numeric", month: "short" });
    if (!days.has(day)) days.set(day, []);
    days.get(day).push(u);
  }
  const timeline = h("ol", { class: "timeline usage-items", "aria-label": t("usage.timeline") }, [...days].map(([day, uses]) =>
    h("li", { class: "day" }, h("h4", {}, day), h("ol", {}, uses.map((u) => h("li", { class: "use" },
      h("time", { datetime: u.occurredAt }, dateTime(u.occurredAt, { hour: "2-digit", minute: "2-digit" })),
      h("span", {}, h("strong", {}, u.appName), ` — ${u.action}`)))))));
  target.replaceChildren(h("p", { class: "meta" }, t("usage.total", { uses: t("count.uses", { count: total }), apps: t("count.apps", { count: page.summary.length }) })),
    summary, timeline);
}

// ---- crop -------------------------------------------------------------------------------------------

/** Choose the square thumbnail region: drag the square, zoom with the slider or the wheel, or use the
 * keyboard (arrows move, + and − zoom). Coordinates are pixels of the upright image, as the API takes them. */
function cropEditor(picture, avatar, changed, done) {
  // The display copy is lighter; coordinates are the API's (the upright image's width × height) either way.
  const img = h("img", { src: displayUrl(avatar), alt: t("crop.picture_alt", { name: avatar.name }), draggable: "false" });
  const square = h("div", { class: "crop-square", tabindex: 0, role: "group", id: "crop-square",
    "aria-label": t("crop.square_label"), "aria-describedby": "crop-help" });
  const stage = h("div", { class: "crop-stage" }, img, square);
  const zoom = h("input", { type: "range", id: "crop-zoom", min: 1, max: 4, step: 0.05, value: 1 });
  const readout = h("output", { id: "crop-readout", class: "meta" });
  let W = avatar.width || 1, H = avatar.height || 1, crop = null;
  const clamp = () => {
    crop.size = Math.max(Math.min(W, H) / 4, Math.min(crop.size, W, H));
    crop.x = Math.max(0, Math.min(crop.x, W - crop.size));
    crop.y = Math.max(0, Math.min(crop.y, H - crop.size));
  };
  const draw = () => {
    clamp();
    Object.assign(square.style, { left: `${(crop.x / W) * 100}%`, top: `${(crop.y / H) * 100}%`,
      width: `${(crop.size / W) * 100}%`, height: `${(crop.size / H) * 100}%` });
    zoom.value = String(Math.min(W, H) / crop.size);
    readout.textContent = t("crop.readout", { size: String(Math.round(crop.size)), x: String(Math.round(crop.x)), y: String(Math.round(crop.y)) });
  };
  const setZoom = (z) => {
    const cx = crop.x + crop.size / 2, cy = crop.y + crop.size / 2;
    crop.size = Math.min(W, H) / Math.max(1, Math.min(4, z));
    crop.x = cx - crop.size / 2; crop.y = cy - crop.size / 2;
    draw();
  };
  const start = () => {
    if (!avatar.width || !avatar.height) { W = img.naturalWidth || W; H = img.naturalHeight || H; }
    const side = Math.min(W, H);
    crop = avatar.crop ? { ...avatar.crop } : { x: (W - side) / 2, y: (H - side) / 2, size: side };
    draw();
  };
  if (img.complete && img.naturalWidth) start(); else img.addEventListener("load", start, { once: true });
  zoom.addEventListener("input", () => crop && setZoom(Number(zoom.value)));
  stage.addEventListener("wheel", (e) => { if (!crop) return; e.preventDefault(); setZoom(Number(zoom.value) * (e.deltaY < 0 ? 1.1 : 1 / 1.1)); }, { passive: false });
  square.addEventListener("pointerdown", (e) => {
    if (!crop) return;
    square.setPointerCapture(e.pointerId);
    const scale = W / stage.getBoundingClientRect().width;
    const from = { x: e.clientX, y: e.clientY, cx: crop.x, cy: crop.y };
    const move = (m) => { crop.x = from.cx + (m.clientX - from.x) * scale; crop.y = from.cy + (m.clientY - from.y) * scale; draw(); };
    const up = () => { square.removeEventListener("pointermove", move); square.removeEventListener("pointerup", up); };
    square.addEventListener("pointermove", move);
    square.addEventListener("pointerup", up);
  });
  square.addEventListener("keydown", (e) => {
    if (!crop) return;
    const step = (e.shiftKey ? 0.1 : 0.02) * Math.min(W, H);
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[e.key]) { crop.x += moves[e.key][0]; crop.y += moves[e.key][1]; draw(); }
    else if (e.key === "+" || e.key === "=") setZoom(Number(zoom.value) * 1.1);
    else if (e.key === "-" || e.key === "_") setZoom(Number(zoom.value) / 1.1);
    else return;
    e.preventDefault();
  });
  const save = async (body) => {
    clearDialogError();
    const updated = await call(state.api.put(`/avatars/${avatar.id}`, { crop: body }));
    changed(updated);
    // The worker re-makes the thumbnail under a new key within a couple of seconds: then the card shows it.
    setTimeout(() => state.api.get(`/avatars/${avatar.id}`).then((a) => {
      if (document.querySelector(`.avatar-card[data-avatar-id="${a.id}"]`) && state.view) state.view.upsertCard(a);
    }).catch(() => {}), 2500);
    toast(body ? t("crop.saved") : t("crop.reset_done"), "ok");
    done();
    document.getElementById("crop-avatar")?.focus();
  };
  picture.replaceChildren(h("div", { class: "crop-editor stack" },
    stage,
    h("p", { class: "meta", id: "crop-help" }, t("crop.help")),
    h("label", { class: "inline" }, h("span", {}, t("crop.zoom")), zoom), readout,
    h("div", { class: "row" },
      h("button", { type: "button", id: "save-crop", onclick: safe(() => save({ x: Math.round(crop.x), y: Math.round(crop.y), size: Math.floor(crop.size) })) }, t("crop.save")),
      h("button", { type: "button", class: "ghost", id: "reset-crop", onclick: safe(() => save(null)) }, t("crop.reset")),
      h("button", { type: "button", class: "ghost", onclick: () => { done(); document.getElementById("crop-avatar")?.focus(); } }, t("action.cancel")))));
  square.focus();
}
