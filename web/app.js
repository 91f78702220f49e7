// Avatar Creator page: projects, avatars (upload, generate, presets), usage, stats.
import { Api, ApiError, uploadToS3 } from "./api.js";
import { closeDialog, confirmDialog, errorText, h, openDialog, toast, when } from "./ui.js";

const TOKEN_KEY = "avatar-creator.token";
const USER_KEY = "avatar-creator.user";
const MAX_BYTES = 10 * 1024 * 1024;
const TYPES = ["image/jpeg", "image/png", "image/webp"];
const ATTRIBUTES = {
  gender: ["female", "male", "non-binary"],
  ageRange: ["young-adult", "adult", "middle-aged", "senior", "teen"],
  ethnicity: ["asian", "southeast asian", "south asian", "black", "white", "hispanic", "middle eastern", "mixed"],
  bodyType: ["slim", "average", "athletic", "curvy", "plus-size"],
  hairStyle: ["short", "long straight", "long wavy", "curly", "bob", "bun", "hijab", "bald"],
  hairColor: ["black", "brown", "blonde", "red", "grey", "dyed"],
  eyeColor: ["brown", "black", "blue", "green", "hazel"],
  skinTone: ["fair", "light", "medium", "tan", "brown", "dark"],
  style: ["professional", "casual", "formal", "sporty", "traditional", "fashion", "creative"],
};
const LABELS = { ageRange: "Age range", bodyType: "Body type", hairStyle: "Hair style", hairColor: "Hair colour",
  eyeColor: "Eye colour", skinTone: "Skin tone" };
const APPS = [["pose-generator", "Pose Generator"], ["video-generator", "Video Generator"],
  ["poster-maker", "Poster Maker"]];

const state = { config: null, api: null, user: null, jobsTimer: null, project: null };
const main = () => document.getElementById("main");
/** Replace the page content; null/false entries (optional parts) are skipped, not printed. */
const render = (...nodes) => main().replaceChildren(...nodes.filter((n) => n !== null && n !== undefined && n !== false));

// ---- boot and sign-in --------------------------------------------------------------------------

async function boot() {
  try {
    state.config = await (await fetch("config.json")).json();
  } catch {
    state.config = { apiUrl: location.origin, stage: "unknown", devLogin: false };
  }
  document.getElementById("signout-button").addEventListener("click", signOut);
  document.getElementById("stats-button").addEventListener("click", showStats);
  window.addEventListener("hashchange", route);
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) useToken(token, localStorage.getItem(USER_KEY));
  route();
}

function useToken(token, user) {
  state.api = new Api(state.config.apiUrl, token);
  state.user = user || userFromToken(token);
  localStorage.setItem(TOKEN_KEY, token);
  localStorage.setItem(USER_KEY, state.user);
  document.getElementById("top-actions").hidden = false;
  document.getElementById("who").textContent = state.user;
}

function userFromToken(token) {
  try { return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub; } catch { return "?"; }
}

function signOut() {
  localStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(USER_KEY);
  state.api = null;
  document.getElementById("top-actions").hidden = true;
  location.hash = "#/";
  route();
}

function renderSignIn() {
  const userInput = h("input", { id: "dev-user", value: "alice", autocomplete: "username", required: true });
  const tokenInput = h("textarea", { id: "paste-token", rows: 3, placeholder: "eyJhbGciOi…" });
  const dev = state.config.devLogin ? h("form", { class: "panel", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const response = await fetch("_local/token", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ userId: userInput.value.trim() }) });
      const payload = await response.json();
      if (!response.ok) throw new ApiError(response.status, payload.error);
      useToken(payload.token, payload.userId);
      route();
    } catch (error) { toast(errorText(error), "error"); }
  } },
  h("h2", {}, "Local sign-in"),
  h("p", { class: "meta" }, "The local stack signs a dev token for any user id. Each user sees only their own projects."),
  h("label", {}, "User id", userInput),
  h("button", { type: "submit", id: "dev-signin" }, "Sign in")) : null;
  const paste = h("form", { class: "panel", onsubmit: (event) => {
    event.preventDefault();
    if (!tokenInput.value.trim()) return;
    useToken(tokenInput.value.trim());
    route();
  } },
  h("h2", {}, "Use a Lumiku token"),
  h("label", {}, "Bearer token", tokenInput),
  h("button", { type: "submit", class: "ghost" }, "Use token"));
  render(h("section", { class: "signin" }, h("h1", {}, "Sign in"), dev, paste));
}

function route() {
  clearInterval(state.jobsTimer);
  if (!state.api) return renderSignIn();
  const match = /^#\/projects\/([\w-]+)/.exec(location.hash);
  return match ? renderProject(match[1]) : renderProjects();
}

async function call(promise, { quiet404 = false } = {}) {
  try {
    return await promise;
  } catch (error) {
    if (error.status === 401) { toast("Your session expired; sign in again", "error"); signOut(); }
    else if (!(quiet404 && error.status === 404)) toast(errorText(error), "error");
    throw error;
  }
}

// ---- projects -----------------------------------------------------------------------------------

async function renderProjects() {
  render(h("p", { class: "loading" }, "Loading projects…"));
  const grid = h("div", { class: "grid", id: "project-grid" });
  const name = h("input", { id: "new-project-name", placeholder: "e.g. Spring campaign", maxlength: 100, required: true });
  const description = h("input", { id: "new-project-description", placeholder: "What is it for? (optional)", maxlength: 1000 });
  const form = h("form", { class: "panel toolbar", onsubmit: async (event) => {
    event.preventDefault();
    const project = await call(state.api.post("/projects", { name: name.value.trim(), description: description.value.trim() }));
    toast(`Project “${project.name}” created`, "ok");
    location.hash = `#/projects/${project.id}`;
  } },
  h("label", {}, "New project", name), h("label", {}, "Description", description),
  h("button", { type: "submit", id: "create-project" }, "Create"));
  render(h("div", { class: "row spread" }, h("h1", {}, "Your projects")), form, grid);
  let cursor = null;
  const more = h("button", { type: "button", class: "ghost", hidden: true, onclick: () => load() }, "Load more");
  main().append(more);
  async function load() {
    const page = await call(state.api.get(`/projects?limit=24${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`));
    if (!cursor && !page.items.length) grid.replaceChildren(h("p", { class: "empty" }, "No projects yet — create one above."));
    for (const project of page.items) grid.append(projectCard(project));
    cursor = page.nextCursor;
    more.hidden = !cursor;
  }
  await load();
}

function projectCard(project) {
  const open = () => { location.hash = `#/projects/${project.id}`; };
  return h("article", { class: "card project-card", tabindex: 0, role: "link", "aria-label": `Open ${project.name}`,
    onclick: open, onkeydown: (e) => e.key === "Enter" && open(), dataset: { projectId: project.id } },
  h("h3", {}, project.name),
  project.description ? h("p", { class: "meta" }, project.description) : null,
  h("p", { class: "meta" }, `${project.avatarCount} avatar${project.avatarCount === 1 ? "" : "s"} · updated ${when(project.updatedAt)}`));
}

// ---- one project --------------------------------------------------------------------------------

async function renderProject(projectId) {
  render(h("p", { class: "loading" }, "Loading project…"));
  let project;
  try { project = await call(state.api.get(`/projects/${projectId}`), { quiet404: true }); } catch (error) {
    render(h("p", { class: "empty" }, error.status === 404 ? "This project does not exist (or is not yours)." :
      "Could not load the project."), h("a", { href: "#/" }, "← All projects"));
    return;
  }
  state.project = project;
  const title = h("h1", { id: "project-title" }, project.name);
  const grid = h("div", { class: "grid", id: "avatar-grid", "aria-live": "polite" });
  const uploads = h("div", { class: "uploads", id: "uploads" });
  const jobs = h("div", { class: "jobs", id: "jobs" });
  const fileInput = h("input", { type: "file", id: "file-input", accept: TYPES.join(","), multiple: true, hidden: true,
    onchange: () => { uploadFiles(project, [...fileInput.files], uploads, grid); fileInput.value = ""; } });
  const drop = h("div", { class: "dropzone", id: "dropzone", tabindex: 0, role: "button",
    "aria-label": "Upload photos: drop files here or press Enter to choose",
    onclick: () => fileInput.click(), onkeydown: (e) => (e.key === "Enter" || e.key === " ") && fileInput.click(),
    ondragover: (e) => { e.preventDefault(); drop.classList.add("over"); },
    ondragleave: () => drop.classList.remove("over"),
    ondrop: (e) => { e.preventDefault(); drop.classList.remove("over"); uploadFiles(project, [...e.dataTransfer.files], uploads, grid); } },
  "📷 Drop photos here, or click to choose — JPEG, PNG or WebP up to 10 MB, up to 20 at once", fileInput);

  const search = h("input", { id: "search", type: "search", placeholder: "Search by name" });
  const filters = {
    sourceType: select("filter-source", [["", "Any source"], ["uploaded", "Uploaded"], ["text_to_image", "AI generated"], ["preset", "From preset"]]),
    gender: select("filter-gender", [["", "Any gender"], ...ATTRIBUTES.gender.map((g) => [g, g])]),
    style: select("filter-style", [["", "Any style"], ...ATTRIBUTES.style.map((s) => [s, s])]),
  };
  const list = avatarList(project, grid);
  let debounce;
  search.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(() => list.reset(query()), 250); });
  Object.values(filters).forEach((s) => s.addEventListener("change", () => list.reset(query())));
  function query() {
    const params = new URLSearchParams();
    if (search.value.trim()) params.set("q", search.value.trim());
    for (const [key, el] of Object.entries(filters)) if (el.value) params.set(key, el.value);
    return params;
  }

  render(
    h("a", { href: "#/" }, "← All projects"),
    h("div", { class: "row spread" }, title, h("div", { class: "row" },
      h("button", { type: "button", id: "generate-button", onclick: () => showGenerate(project, jobs, grid) }, "✨ Generate"),
      h("button", { type: "button", class: "ghost", id: "rename-project", onclick: () => renameProject(project, title) }, "Rename"),
      h("button", { type: "button", class: "ghost", id: "delete-project", onclick: () => deleteProject(project) }, "Delete"))),
    project.description ? h("p", { class: "meta" }, project.description) : null,
    drop, uploads, jobs,
    h("div", { class: "toolbar" }, h("label", {}, "Search", search), h("label", {}, "Source", filters.sourceType),
      h("label", {}, "Gender", filters.gender), h("label", {}, "Style", filters.style)),
    grid, list.sentinel, list.more);
  list.start(project.avatars);
  watchJobs(project, jobs, grid, { withFailures: true });
}

function select(id, options, value = "") {
  return h("select", { id }, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
}

function avatarList(project, grid) {
  let cursor = null;
  let params = new URLSearchParams();
  let loading = false;
  let generation = 0;  // a reset makes any page still in flight stale
  const more = h("button", { type: "button", class: "ghost", id: "load-more", hidden: true, onclick: () => load() }, "Load more");
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
  const nearBottom = () => sentinel.isConnected && sentinel.getBoundingClientRect().top < innerHeight + 400;
  async function fetchPage(withCursor) {
    const q = new URLSearchParams(params);
    q.set("limit", "24");
    if (withCursor) q.set("cursor", withCursor);
    return call(state.api.get(`/projects/${project.id}/avatars?${q}`));
  }
  async function load() {
    if (loading || !cursor) return;
    loading = true;
    const mine = generation;
    try {
      const page = await fetchPage(cursor);
      if (mine === generation) show(page, false);
    } finally { loading = false; }
    // A filtered page can be short: keep filling while the end of the list is still on screen.
    if (mine === generation && cursor && nearBottom()) setTimeout(load, 0);
  }
  function show(page, replace) {
    if (replace) grid.replaceChildren();
    for (const avatar of page.items) upsertCard(grid, avatar);
    if (!grid.querySelector(".avatar-card")) grid.replaceChildren(h("p", { class: "empty", id: "no-avatars" },
      params.toString() ? "No avatars match." : "No avatars yet — upload a photo or generate one."));
    cursor = page.nextCursor;
    more.hidden = !cursor;
    watchProcessing(grid);
  }
  new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && load(), { rootMargin: "400px" }).observe(sentinel);
  return {
    more, sentinel,
    start(firstPage) {
      show(firstPage, true);
      if (cursor && nearBottom()) load();
    },
    async reset(newParams) {
      params = newParams;
      const mine = ++generation;
      grid.setAttribute("aria-busy", "true");
      try {
        const page = await fetchPage(null);
        if (mine === generation) show(page, true);
      } finally { grid.removeAttribute("aria-busy"); }
      if (mine === generation && cursor && nearBottom()) load();
    },
  };
}

/** Avatars still being checked (e.g. uploaded before a reload) turn into their final card by themselves. */
function watchProcessing(grid) {
  if (grid.dataset.watching) return;
  grid.dataset.watching = "1";
  const deadline = Date.now() + 120_000;
  const tick = async () => {
    const pending = [...grid.querySelectorAll('.avatar-card[data-status="processing"], .avatar-card[data-watch]')].slice(0, 10);
    if (!pending.length || !grid.isConnected || Date.now() > deadline) { delete grid.dataset.watching; return; }
    for (const card of pending) {
      try {
        const avatar = await state.api.get(`/avatars/${card.dataset.avatarId}`);
        if (avatar.status === "ready" || avatar.status === "rejected") upsertCard(grid, avatar);
      } catch { /* deleted meanwhile, or offline: next tick */ }
    }
    setTimeout(tick, 2000);
  };
  setTimeout(tick, 2000);
}

function upsertCard(grid, avatar, { first = false } = {}) {
  grid.querySelector("#no-avatars")?.remove();
  const card = avatarCard(avatar);
  const existing = grid.querySelector(`[data-avatar-id="${avatar.id}"]`);
  if (existing) existing.replaceWith(card);
  else if (first) grid.prepend(card);
  else grid.append(card);
}

function avatarCard(avatar) {
  const ai = avatar.sourceType !== "uploaded";
  const image = avatar.status === "ready"
    ? h("button", { type: "button", class: "thumb", "aria-label": `Preview ${avatar.name}`, onclick: () => showAvatar(avatar) },
      h("img", { src: avatar.thumbnailUrl, alt: avatar.name, class: "thumb", loading: "lazy" }))
    : h("div", { class: "thumb placeholder" }, avatar.status === "rejected" ? "⚠ Rejected" : "Processing…");
  const badges = ["gender", "ageRange", "ethnicity", "style"].filter((k) => avatar[k])
    .map((k) => h("span", { class: "badge" }, avatar[k]));
  if (avatar.status !== "ready") badges.unshift(h("span", { class: `badge status-${avatar.status}` }, avatar.status));
  return h("article", { class: "card avatar-card", dataset: { avatarId: avatar.id, status: avatar.status } },
    image,
    h("div", { class: "body" },
      h("h3", {}, ai ? h("span", { title: "AI generated", "aria-label": "AI generated" }, "✨") : null, avatar.name),
      h("div", { class: "badges" }, badges),
      avatar.statusReason ? h("p", { class: "meta reason" }, avatar.statusReason) : null,
      h("p", { class: "meta" }, `Created ${when(avatar.createdAt)} · used ${avatar.usageCount}× · last ${when(avatar.lastUsedAt)}`),
      h("div", { class: "row" },
        avatar.status === "ready" ? h("button", { type: "button", class: "ghost small", onclick: () => showAvatar(avatar) }, "Details") : null,
        h("button", { type: "button", class: "ghost small", "aria-label": `Delete ${avatar.name}`,
          onclick: () => deleteAvatar(avatar) }, "Delete"))));
}

async function renameProject(project, title) {
  const name = h("input", { id: "rename-input", value: project.name, maxlength: 100, required: true });
  const description = h("input", { value: project.description || "", maxlength: 1000 });
  const form = h("form", { class: "form-grid", onsubmit: async (event) => {
    event.preventDefault();
    const updated = await call(state.api.put(`/projects/${project.id}`, { name: name.value.trim(), description: description.value.trim() }));
    Object.assign(project, updated);
    title.textContent = updated.name;
    closeDialog();
    toast("Project renamed", "ok");
  } }, h("label", {}, "Name", name), h("label", {}, "Description", description), h("button", { type: "submit", id: "rename-save" }, "Save"));
  openDialog("Rename project", form);
}

async function deleteProject(project) {
  // Fresh count: uploads and generations may have landed since the page was drawn.
  const n = (await call(state.api.get(`/projects/${project.id}`))).avatarCount;
  const ok = await confirmDialog(`Delete “${project.name}”?`,
    `This removes the project, its ${n} avatar${n === 1 ? "" : "s"}, their usage history and their image files. It cannot be undone.`);
  if (!ok) return;
  await call(state.api.delete(`/projects/${project.id}`));
  toast(`Deleted “${project.name}”`, "ok");
  location.hash = "#/";
}

async function deleteAvatar(avatar) {
  const ok = await confirmDialog(`Delete “${avatar.name}”?`, "The avatar, its usage history and its image files are removed.");
  if (!ok) return;
  await call(state.api.delete(`/avatars/${avatar.id}`));
  document.querySelector(`[data-avatar-id="${avatar.id}"]`)?.remove();
  toast("Avatar deleted", "ok");
}

// ---- upload ---------------------------------------------------------------------------------------

async function uploadFiles(project, files, list, grid) {
  if (!files.length) return;
  const accepted = [];
  for (const file of files) {
    const refusal = !TYPES.includes(file.type) ? "only JPEG, PNG or WebP images can be uploaded"
      : file.size > MAX_BYTES ? "larger than 10 MB" : file.size === 0 ? "the file is empty" : null;
    if (refusal) uploadRow(list, file).fail(`refused: ${refusal}`);
    else accepted.push(file);
  }
  for (let i = 0; i < accepted.length; i += 20) {
    const batch = accepted.slice(i, i + 20);
    const rows = batch.map((file) => uploadRow(list, file));
    const specs = batch.map((file) => ({ name: file.name.replace(/\.[^.]+$/, "").trim().slice(0, 100) || "Photo",
      contentType: file.type, size: file.size }));
    let created;
    try {
      created = await call(state.api.post(`/projects/${project.id}/avatars/uploads`, { files: specs }));
    } catch (error) {
      rows.forEach((row) => row.fail(`refused: ${errorText(error)}`));
      continue;
    }
    await Promise.all(created.items.map((item, k) => sendOne(item, batch[k], rows[k], grid)));
  }
}

/** One file's line under the drop zone: a progress bar while it goes, its reason if it is refused. */
function uploadRow(list, file) {
  const bar = h("progress", { max: 1, value: 0, "aria-label": `Uploading ${file.name}` });
  const label = h("span", { class: "upload-label" }, `${file.name} — waiting`);
  const row = h("div", { class: "upload", dataset: { file: file.name } }, label, bar);
  list.append(row);
  return {
    row, bar, label,
    say(text) { label.textContent = `${file.name} — ${text}`; },
    fail(reason) {
      row.classList.add("failed");
      row.dataset.status = "failed";
      label.textContent = `${file.name} — ${reason}`;
      bar.remove();
      row.append(h("button", { type: "button", class: "ghost small", "aria-label": `Dismiss ${file.name}`,
        onclick: () => row.remove() }, "Dismiss"));
    },
  };
}

async function sendOne(item, file, row, grid) {
  row.row.dataset.avatarId = item.avatar.id;
  try {
    row.say("uploading");
    await uploadToS3(item.upload, file, (fraction) => {
      row.bar.value = fraction;
      row.say(`uploading ${Math.round(fraction * 100)}%`);
    });
    row.bar.value = 1;
    row.say("checking and making the thumbnail…");
    const avatar = await waitForAvatar(item.avatar.id);
    if (avatar.status === "ready") {
      upsertCard(grid, avatar, { first: true });
      row.row.remove();
      toast(`${file.name} is ready`, "ok");
    } else if (avatar.status === "rejected") {
      upsertCard(grid, avatar, { first: true });
      row.fail(`rejected: ${avatar.statusReason}`);
    } else {
      upsertCard(grid, avatar, { first: true });
      grid.querySelector(`[data-avatar-id="${avatar.id}"]`)?.setAttribute("data-watch", "1");
      row.row.remove();
      toast(`${file.name} is still being processed; it will appear when ready`);
      watchProcessing(grid);
    }
  } catch (error) {
    row.fail(error.message);
  }
}

async function waitForAvatar(id, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  let avatar;
  do {
    avatar = await state.api.get(`/avatars/${id}`);
    if (avatar.status === "ready" || avatar.status === "rejected") return avatar;
    await new Promise((r) => setTimeout(r, 400));
  } while (Date.now() < deadline);
  return avatar;
}

// ---- generation ------------------------------------------------------------------------------------

function fieldInputs(prefill = {}) {
  const inputs = {
    prompt: h("textarea", { id: "gen-prompt", rows: 2, maxlength: 600, required: true, placeholder: "e.g. confident business woman in a bright office" }),
    name: h("input", { id: "gen-name", maxlength: 100, required: true, placeholder: "Avatar name" }),
    personaName: h("input", { id: "gen-persona-name", maxlength: 100 }),
    personaAge: h("input", { id: "gen-persona-age", type: "number", min: 1, max: 120 }),
    personaPersonality: h("input", { id: "gen-persona-personality", placeholder: "friendly, confident" }),
    personaBackground: h("textarea", { id: "gen-persona-background", rows: 2, maxlength: 1000 }),
  };
  for (const [key, values] of Object.entries(ATTRIBUTES)) {
    inputs[key] = select(`gen-${key}`, [["", "—"], ...values.map((v) => [v, v])]);
  }
  fill(inputs, prefill);
  return inputs;
}

function fill(inputs, values) {
  for (const [key, value] of Object.entries(values)) {
    if (!inputs[key] || value === null || value === undefined) continue;
    const el = inputs[key];
    const text = Array.isArray(value) ? value.join(", ") : String(value);
    if (el.tagName === "SELECT" && ![...el.options].some((o) => o.value === text)) el.append(h("option", { value: text }, text));
    el.value = text;
  }
}

function collect(inputs) {
  const body = {};
  for (const [key, el] of Object.entries(inputs)) {
    const value = el.value.trim();
    if (!value) continue;
    if (key === "personaAge") body[key] = Number(value);
    else if (key === "personaPersonality") body[key] = value.split(",").map((s) => s.trim()).filter(Boolean).slice(0, 10);
    else body[key] = value;
  }
  return body;
}

async function showGenerate(project, jobs, grid) {
  const inputs = fieldInputs();
  const start = async (event) => {
    event.preventDefault();
    const button = event.submitter || event.target.querySelector("[type=submit]");
    if (button.disabled) return;
    button.disabled = true;  // one click, one job (and the key below makes a network retry harmless)
    const body = collect(inputs);
    try {
      const job = await call(state.api.post(`/projects/${project.id}/avatars/generate`, body, { "Idempotency-Key": crypto.randomUUID() }));
      closeDialog();
      toast("Generation started", "ok");
      renderJob(jobs, job, grid);
      watchJobs(project, jobs, grid);
    } catch { /* toast shown */ } finally { button.disabled = false; }
  };
  const personas = h("select", { id: "persona-picker", "aria-label": "Fill the persona from an example" }, h("option", { value: "" }, "Start from a persona example…"));
  state.api.get("/persona-examples?limit=100").then((page) => {
    for (const p of page.items) personas.append(h("option", { value: p.id, dataset: { json: JSON.stringify(p) } },
      `${p.personaName}, ${p.personaAge} — ${p.category}`));
  }).catch(() => {});
  personas.addEventListener("change", () => {
    const option = personas.selectedOptions[0];
    if (!option?.dataset.json) return;
    const persona = JSON.parse(option.dataset.json);
    fill(inputs, persona);
    if (!inputs.name.value) inputs.name.value = persona.personaName;
    state.api.post(`/persona-examples/${persona.id}/use`).catch(() => {});
  });
  const describe = h("form", { id: "generate-form", onsubmit: start },
    h("div", { class: "form-grid" },
      h("label", { style: "grid-column: 1 / -1" }, "Describe the person", inputs.prompt),
      h("label", {}, "Avatar name", inputs.name),
      h("label", { style: "grid-column: 1 / -1" }, "Persona", personas),
      h("label", {}, "Persona name", inputs.personaName), h("label", {}, "Age", inputs.personaAge),
      h("label", {}, "Personality (comma separated)", inputs.personaPersonality),
      h("label", { style: "grid-column: 1 / -1" }, "Background", inputs.personaBackground),
      Object.keys(ATTRIBUTES).map((k) => h("label", {}, LABELS[k] || k[0].toUpperCase() + k.slice(1), inputs[k]))),
    h("div", { class: "row" }, h("button", { type: "submit", id: "start-generation" }, "✨ Generate"),
      h("span", { class: "meta" }, "Photo-realistic portrait with FLUX.1-dev and a realism LoRA")));
  const gallery = h("div", { id: "preset-gallery" }, h("p", { class: "loading" }, "Loading presets…"));
  const tabs = tabbed([["Describe", describe], ["Preset gallery", gallery]]);
  openDialog("Generate an avatar", tabs, { wide: true });
  loadGallery(gallery, project, jobs, grid);
}

function tabbed(panes) {
  const buttons = panes.map(([label], i) => h("button", { type: "button", role: "tab", "aria-selected": i === 0 ? "true" : "false",
    id: `tab-${i}`, onclick: () => pick(i) }, label));
  const bodies = panes.map(([, node], i) => { const d = h("div", { role: "tabpanel", hidden: i !== 0 }, node); return d; });
  function pick(i) {
    buttons.forEach((b, k) => b.setAttribute("aria-selected", k === i ? "true" : "false"));
    bodies.forEach((b, k) => { b.hidden = k !== i; });
  }
  return h("div", {}, h("div", { class: "tabs", role: "tablist" }, buttons), bodies);
}

async function loadGallery(gallery, project, jobs, grid, category = "") {
  const categories = ["", "professional", "casual", "sports", "fashion", "traditional", "creative"];
  const picker = select("preset-category", categories.map((c) => [c, c || "All categories"]), category);
  picker.addEventListener("change", () => loadGallery(gallery, project, jobs, grid, picker.value));
  let page;
  try { page = await call(state.api.get(`/presets?limit=100${category ? `&category=${category}` : ""}`)); } catch { return; }
  const cards = page.items.map((preset) => h("article", { class: "preset", dataset: { presetId: preset.id } },
    preset.thumbnailUrl ? h("img", { src: preset.thumbnailUrl, alt: `Preview of ${preset.name}`, loading: "lazy" }) : h("div", { class: "thumb placeholder" }, "No preview"),
    h("div", { class: "body" }, h("strong", {}, preset.name), h("span", { class: "meta" }, preset.description),
      h("span", { class: "meta" }, `${preset.category} · used ${preset.popularity}×`),
      h("button", { type: "button", class: "small use-preset", onclick: async () => {
        try {
          const job = await call(state.api.post(`/presets/${preset.id}/generate`, { projectId: project.id }, { "Idempotency-Key": crypto.randomUUID() }));
          closeDialog();
          toast(`Generating “${preset.name}”`, "ok");
          renderJob(jobs, job, grid);
          watchJobs(project, jobs, grid);
        } catch { /* toast shown */ }
      } }, "Use preset"))));
  gallery.replaceChildren(h("div", { class: "row" }, picker), h("div", { class: "presets" }, cards));
}

const DISMISSED_KEY = "avatar-creator.dismissed-jobs";
const dismissed = () => { try { return JSON.parse(localStorage.getItem(DISMISSED_KEY)) || []; } catch { return []; } };
function dismissJob(id) {
  // Bounded: only the newest failures are ever offered again, so old ids can go.
  localStorage.setItem(DISMISSED_KEY, JSON.stringify([id, ...dismissed().filter((d) => d !== id)].slice(0, 200)));
}

function jobText(job) {
  if (job.status === "pending") return job.errorMessage ? `Waiting to retry — ${job.errorMessage}` : "Waiting in the queue…";
  if (job.status === "processing") return `Generating… ${job.progress}%`;
  return `Failed — ${job.errorMessage || "unknown reason"}`;
}

function renderJob(jobs, job, grid) {
  const existing = jobs.querySelector(`[data-generation-id="${job.id}"]`);
  if (job.status === "completed") {
    existing?.remove();
    if (job.avatar) {
      upsertCard(grid, job.avatar, { first: true });
      if (existing) toast(`“${job.avatar.name}” is ready`, "ok");
    }
    return;
  }
  if (job.status === "cancelled") { existing?.remove(); return; }
  const name = job.request?.name || job.name || "Avatar";
  const card = h("div", { class: `job ${job.status}`, role: "group", "aria-label": `Generation of ${name}`,
    dataset: { generationId: job.id, status: job.status } },
  h("div", { class: "row spread" }, h("strong", {}, `✨ ${name}`),
    h("span", { class: "meta job-status", "aria-live": "polite" }, jobText(job))),
  job.status === "failed" ? null : h("progress", { max: 100, value: job.progress, "aria-label": `Progress of ${name}` }),
  h("div", { class: "row" },
    job.status === "failed" ? h("button", { type: "button", class: "small retry-job", onclick: async (event) => {
      const button = event.currentTarget;
      button.disabled = true;
      try {
        renderJob(jobs, await call(state.api.post(`/generations/${job.id}/retry`)), grid);
        watchJobs(state.project, jobs, grid);
      } catch { button.disabled = false; }
    } }, "Retry") : null,
    job.status === "pending" ? h("button", { type: "button", class: "ghost small cancel-job", onclick: async () => {
      try {
        renderJob(jobs, await call(state.api.post(`/generations/${job.id}/cancel`)), grid);
        toast(`Cancelled “${name}”`);
      } catch { /* it started meanwhile: the next tick shows it */ }
    } }, "Cancel") : null,
    job.status === "failed" ? h("button", { type: "button", class: "ghost small dismiss-job", onclick: () => {
      dismissJob(job.id);
      card.remove();
    } }, "Dismiss") : null));
  if (existing) existing.replaceWith(card); else jobs.append(card);
}

/** Poll active jobs: those on the page plus what the server says is active, so cards survive a reload.
 * On first load, recent failures not yet dismissed come back too (with their Retry button). */
function watchJobs(project, jobs, grid, { withFailures = false } = {}) {
  clearInterval(state.jobsTimer);
  const stillHere = () => state.project?.id === project.id && jobs.isConnected;
  const tick = async () => {
    if (!stillHere()) return clearInterval(state.jobsTimer);
    try {
      const active = await state.api.get(`/projects/${project.id}/generations?status=active&limit=50`);
      if (!stillHere()) return;
      const known = new Set(active.items.map((j) => j.id));
      for (const job of active.items) renderJob(jobs, job, grid);
      for (const card of jobs.querySelectorAll(".job:not(.failed)")) {
        if (!known.has(card.dataset.generationId)) renderJob(jobs, await state.api.get(`/generations/${card.dataset.generationId}`), grid);
      }
      if (!jobs.querySelector(".job:not(.failed)")) clearInterval(state.jobsTimer);
    } catch { /* next tick */ }
  };
  if (withFailures) {
    state.api.get(`/projects/${project.id}/generations?limit=20`).then((recent) => {
      const gone = new Set(dismissed());
      for (const job of recent.items) if (job.status === "failed" && !gone.has(job.id) && stillHere()) renderJob(jobs, job, grid);
    }).catch(() => {});
  }
  tick();
  state.jobsTimer = setInterval(tick, 1000);
}

// ---- avatar details, usage, variations ----------------------------------------------------------------

async function showAvatar(avatar) {
  const fresh = await call(state.api.get(`/avatars/${avatar.id}`));
  const history = h("div", { id: "usage-history" }, h("p", { class: "loading" }, "Loading usage…"));
  const app = select("usage-app", APPS);
  const action = h("input", { id: "usage-action", value: "generate", maxlength: 64 });
  const record = h("form", { class: "toolbar", onsubmit: async (event) => {
    event.preventDefault();
    const [appId, appName] = APPS.find(([id]) => id === app.value);
    await call(state.api.post(`/avatars/${fresh.id}/usage`, { appId, appName, action: action.value.trim() || "use",
      eventId: crypto.randomUUID() }));
    toast(`Use by ${appName} recorded`, "ok");
    loadHistory(fresh.id, history);
  } }, h("label", {}, "App", app), h("label", {}, "Action", action), h("button", { type: "submit", id: "record-usage" }, "Record use"));
  const facts = ["personaName", "personaAge", "personaBackground", ...Object.keys(ATTRIBUTES), "prompt", "seed", "width", "height", "format"]
    .filter((k) => fresh[k] !== null && fresh[k] !== undefined && fresh[k] !== "")
    .map((k) => h("tr", {}, h("th", {}, LABELS[k] || k), h("td", {}, String(fresh[k]))));
  if (fresh.personaPersonality?.length) facts.splice(2, 0, h("tr", {}, h("th", {}, "personality"), h("td", {}, fresh.personaPersonality.join(", "))));
  const variations = h("button", { type: "button", class: "ghost", id: "make-variations", onclick: async () => {
    const out = await call(state.api.post(`/avatars/${fresh.id}/variations`, { count: 2 }, { "Idempotency-Key": crypto.randomUUID() }));
    closeDialog();
    toast(`${out.items.length} variations started`, "ok");
    const jobs = document.getElementById("jobs");
    const grid = document.getElementById("avatar-grid");
    if (jobs && grid) { out.items.forEach((job) => renderJob(jobs, job, grid)); watchJobs(state.project, jobs, grid); }
  } }, "✨ 2 variations");
  const nameInput = h("input", { id: "avatar-name", value: fresh.name, maxlength: 100, required: true });
  const rename = h("form", { class: "toolbar", onsubmit: async (event) => {
    event.preventDefault();
    const updated = await call(state.api.put(`/avatars/${fresh.id}`, { name: nameInput.value.trim() }));
    document.getElementById("dialog-title").textContent = updated.name;
    const grid = document.getElementById("avatar-grid");
    if (grid?.querySelector(`[data-avatar-id="${updated.id}"]`)) upsertCard(grid, updated);
    toast("Avatar renamed", "ok");
  } }, h("label", {}, "Name", nameInput), h("button", { type: "submit", class: "ghost", id: "rename-avatar" }, "Rename"));
  openDialog(fresh.name, h("div", { class: "avatar-detail" },
    h("div", { class: "detail-image" },
      h("img", { class: "preview", src: fresh.imageUrl, alt: fresh.name }),
      h("div", { class: "row" }, variations, h("a", { href: fresh.imageUrl, target: "_blank", rel: "noopener", class: "meta" }, "Open full image"))),
    h("div", { class: "detail-facts" },
      rename,
      h("table", { class: "facts" }, facts),
      h("h2", {}, "Usage"), record, history)), { wide: true });
  loadHistory(fresh.id, history);
}

async function loadHistory(avatarId, target) {
  const page = await call(state.api.get(`/avatars/${avatarId}/usage-history?limit=20`));
  const summary = page.summary.length
    ? h("table", { class: "usage-summary" }, h("tr", {}, h("th", {}, "App"), h("th", {}, "Uses"), h("th", {}, "Last used")),
      page.summary.map((s) => h("tr", {}, h("td", {}, s.appName), h("td", {}, s.count), h("td", {}, when(s.lastUsedAt)))))
    : h("p", { class: "empty" }, "Not used by any app yet.");
  const items = page.items.map((u) => h("li", {}, `${when(u.occurredAt)} — ${u.appName}: ${u.action}`));
  target.replaceChildren(summary, ...(items.length ? [h("ul", { class: "usage-items" }, items)] : []));
}

async function showStats() {
  const s = await call(state.api.get("/stats"));
  const tiles = [["Projects", s.totalProjects], ["Avatars", s.totalAvatars], ["Uploaded", s.bySourceType.uploaded],
    ["AI generated", s.bySourceType.text_to_image], ["From presets", s.bySourceType.preset], ["Uploads (7 days)", s.recentUploads],
    ["Total uses", s.totalUsage], ["Uses per avatar", s.averageUsagePerAvatar], ["Generating now", s.activeGenerations]]
    .map(([label, value]) => h("div", { class: "tile" }, h("b", {}, value), label));
  openDialog("Your stats", h("div", { id: "stats" }, h("div", { class: "stat-tiles" }, tiles),
    h("h2", {}, "Usage by app"), s.usageByApp.length ? barChart(s.usageByApp) : h("p", { class: "empty" }, "No usage yet.")));
}

function barChart(rows) {
  const max = Math.max(...rows.map((r) => r.count));
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const rowH = 28;
  svg.setAttribute("viewBox", `0 0 400 ${rows.length * rowH}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", rows.map((r) => `${r.appName}: ${r.count}`).join(", "));
  rows.forEach((r, i) => {
    const bar = document.createElementNS(ns, "rect");
    Object.entries({ x: 140, y: i * rowH + 4, height: rowH - 8, width: Math.max(2, (r.count / max) * 230), rx: 4, fill: "#4f46e5" })
      .forEach(([k, v]) => bar.setAttribute(k, v));
    const label = document.createElementNS(ns, "text");
    Object.entries({ x: 0, y: i * rowH + 19, "font-size": 12 }).forEach(([k, v]) => label.setAttribute(k, v));
    label.textContent = r.appName.slice(0, 20);
    const value = document.createElementNS(ns, "text");
    Object.entries({ x: 146 + Math.max(2, (r.count / max) * 230), y: i * rowH + 19, "font-size": 12 }).forEach(([k, v]) => value.setAttribute(k, v));
    value.textContent = r.count;
    svg.append(bar, label, value);
  });
  return h("div", { class: "chart" }, svg);
}

boot();
