// A Node app of Lumiku calling every route of the Avatar Creator API through a client typed from
// /openapi.json (openapi-typescript + openapi-fetch). Only type-checked (tsc --noEmit, by
// tests/unit/test_openapi_contract.py), never run: a route, parameter or field that the document
// no longer describes the way this code uses it is a compile error. The test also checks that every
// path and method of the document is called here, so a new route must be added below.
import createClient from "openapi-fetch";

import type { components, paths } from "./api";

type Avatar = components["schemas"]["Avatar"];
type Generation = components["schemas"]["Generation"];
type Project = components["schemas"]["Project"];

const API = "/api/apps/avatar-creator";

export async function everyRoute(baseUrl: string, token: string): Promise<void> {
  const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
  const idempotency = { "Idempotency-Key": "lumiku-contract-1" };

  // ---- system -------------------------------------------------------------------------------
  const health = await client.GET(`${API}/health`);
  const stage: string | undefined = health.data?.stage;
  await client.GET(`${API}/openapi.json`);

  // ---- projects -----------------------------------------------------------------------------
  const created = await client.POST(`${API}/projects`, { body: { name: "Campaign", description: "Spring" } });
  if (!created.data) throw new Error(`create project: ${created.error?.error.code}`);
  const project: Project = created.data;
  const project_id = project.id;
  const listed = await client.GET(`${API}/projects`, { params: { query: { limit: 10 } } });
  const next: string | null | undefined = listed.data?.nextCursor;
  if (next) await client.GET(`${API}/projects`, { params: { query: { cursor: next } } });
  await client.GET(`${API}/projects/{project_id}`, { params: { path: { project_id } } });
  await client.PUT(`${API}/projects/{project_id}`, { params: { path: { project_id } }, body: { name: "Campaign 2" } });
  const avatars = await client.GET(`${API}/projects/{project_id}/avatars`, {
    params: { path: { project_id }, query: { limit: 24, sourceType: "uploaded", status: "ready", q: "maya" } },
  });
  const firstAvatar: Avatar | undefined = avatars.data?.items[0];

  // ---- uploads ------------------------------------------------------------------------------
  await client.POST(`${API}/projects/{project_id}/avatars/upload`, {
    params: { path: { project_id } }, body: { name: "maya", contentType: "image/jpeg", size: 123_456 },
  });
  await client.POST(`${API}/projects/{project_id}/avatars/uploads`, {
    params: { path: { project_id } }, body: { files: [{ name: "maya", contentType: "image/png", size: 1 }] },
  });

  // ---- generation ---------------------------------------------------------------------------
  const generated = await client.POST(`${API}/projects/{project_id}/avatars/generate`, {
    params: { path: { project_id }, header: idempotency }, body: { prompt: "a friendly baker", name: "Baker" },
  });
  const job: Generation | undefined = generated.data;
  const generation_id = job?.id ?? "gen_unknown";
  await client.GET(`${API}/projects/{project_id}/generations`, {
    params: { path: { project_id }, query: { status: "active", limit: 50 } },
  });
  await client.GET(`${API}/generations/{generation_id}`, { params: { path: { generation_id } } });
  await client.POST(`${API}/generations/{generation_id}/cancel`, { params: { path: { generation_id } } });
  await client.POST(`${API}/generations/{generation_id}/retry`, { params: { path: { generation_id } } });

  // ---- presets and persona examples ----------------------------------------------------------
  const presets = await client.GET(`${API}/presets`, { params: { query: { limit: 20 } } });
  const preset_id = presets.data?.items[0]?.id ?? "pre_unknown";
  await client.GET(`${API}/presets/{preset_id}`, { params: { path: { preset_id } } });
  await client.POST(`${API}/presets/{preset_id}/generate`, {
    params: { path: { preset_id }, header: idempotency }, body: { projectId: project_id },
  });
  const examples = await client.GET(`${API}/persona-examples`, { params: { query: { limit: 20 } } });
  const example_id = examples.data?.items[0]?.id ?? "pex_unknown";
  await client.POST(`${API}/persona-examples/{example_id}/use`, { params: { path: { example_id } } });

  // ---- one avatar ---------------------------------------------------------------------------
  const avatar_id = firstAvatar?.id ?? "ava_unknown";
  const avatar = await client.GET(`${API}/avatars/{avatar_id}`, { params: { path: { avatar_id } } });
  const status: Avatar["status"] | undefined = avatar.data?.status;
  if (status === "ready") {
    await client.PUT(`${API}/avatars/{avatar_id}`, { params: { path: { avatar_id } }, body: { name: "Maya B." } });
  }
  await client.POST(`${API}/avatars/{avatar_id}/restyle`, {
    params: { path: { avatar_id }, header: idempotency }, body: { prompt: "as a watercolour painting" },
  });
  await client.POST(`${API}/avatars/{avatar_id}/variations`, {
    params: { path: { avatar_id }, header: idempotency }, body: {},
  });
  await client.POST(`${API}/avatars/{avatar_id}/usage`, {
    params: { path: { avatar_id } }, body: { appId: "pose-generator", appName: "Pose Generator", action: "pose.generate" },
  });
  await client.GET(`${API}/avatars/{avatar_id}/usage-history`, { params: { path: { avatar_id }, query: { limit: 20 } } });
  // Attribute suggestions of an upload (issue 30): accept some, dismiss one, dismiss the rest.
  const suggested: Avatar["suggestions"] = avatar.data?.suggestions;
  if (avatar.data?.suggestionStatus === "ready" && suggested && "glasses" in suggested) {
    await client.POST(`${API}/avatars/{avatar_id}/suggestions/accept`, {
      params: { path: { avatar_id } }, body: { attributes: ["glasses", "hairLength"] },
    });
  }
  await client.DELETE(`${API}/avatars/{avatar_id}/suggestions/{attribute}`, {
    params: { path: { avatar_id, attribute: "background" } },
  });
  await client.DELETE(`${API}/avatars/{avatar_id}/suggestions`, { params: { path: { avatar_id } } });

  // ---- version history and lineage ------------------------------------------------------------
  const history = await client.GET(`${API}/avatars/{avatar_id}/versions`, {
    params: { path: { avatar_id }, query: { limit: 20 } },
  });
  const oldest = history.data?.items.at(-1);
  const changedFields: string[] = oldest ? Object.keys(oldest.changes) : [];
  const cause: "edit" | "suggestion_accept" | "restore" | undefined = oldest?.cause;
  if (oldest) {
    const restored = await client.POST(`${API}/avatars/{avatar_id}/versions/{version}/restore`, {
      params: { path: { avatar_id, version: String(oldest.version) } },
    });
    const newVersion: number | undefined = restored.data?.version?.version;  // null: already in that state
    void newVersion;
  }
  const madeFrom: string | undefined = avatar.data?.source?.id;
  const derivedCount: number = avatar.data?.derivatives.items.length ?? 0;
  void changedFields;
  void cause;
  void madeFrom;
  void derivedCount;
  await client.GET(`${API}/stats`);

  // ---- webhooks -----------------------------------------------------------------------------
  const hook = await client.POST(`${API}/webhooks`, {
    body: { url: "https://lumiku.example/hooks/avatars", events: ["avatar.ready", "generation.completed"] },
  });
  const webhook_id = hook.data?.id ?? "whk_unknown";
  await client.GET(`${API}/webhooks`, { params: { query: { limit: 20 } } });
  await client.GET(`${API}/webhooks/{webhook_id}`, { params: { path: { webhook_id } } });
  await client.PUT(`${API}/webhooks/{webhook_id}`, { params: { path: { webhook_id } }, body: { description: "Lumiku" } });
  await client.GET(`${API}/webhooks/{webhook_id}/deliveries`, { params: { path: { webhook_id }, query: { limit: 20 } } });
  await client.POST(`${API}/webhooks/{webhook_id}/rotate-secret`, { params: { path: { webhook_id } } });
  await client.POST(`${API}/webhooks/{webhook_id}/test`, { params: { path: { webhook_id } } });
  await client.DELETE(`${API}/webhooks/{webhook_id}`, { params: { path: { webhook_id } } });

  // ---- share links ---------------------------------------------------------------------------
  const made = await client.POST(`${API}/avatars/{avatar_id}/shares`, {
    params: { path: { avatar_id } },
    body: { expiresIn: 7 * 86400, label: "Lumiku preview", fields: ["personaName", "attributes"] },
  });
  const shareToken: string | undefined = made.data?.token;
  const share_id = made.data?.id ?? "shr_unknown";
  const shares = await client.GET(`${API}/avatars/{avatar_id}/shares`, { params: { path: { avatar_id }, query: { limit: 20 } } });
  const shareStatus: "active" | "expired" | "revoked" | undefined = shares.data?.items[0]?.status;
  // The public page is HTML for browsers; a client only needs its path (no bearer token is sent by browsers).
  if (shareToken) await client.GET(`${API}/s/{token}`, { params: { path: { token: shareToken } }, parseAs: "text" });
  await client.DELETE(`${API}/shares/{share_id}`, { params: { path: { share_id } } });
  void shareStatus;
  // ---- exports ------------------------------------------------------------------------------
  const avatarExport = await client.POST(`${API}/avatars/{avatar_id}/export`, { params: { path: { avatar_id } } });
  const projectExport = await client.POST(`${API}/projects/{project_id}/export`, { params: { path: { project_id } } });
  const export_id = projectExport.data?.id ?? avatarExport.data?.id ?? "exp_unknown";
  const exported = await client.GET(`${API}/exports/{export_id}`, { params: { path: { export_id } } });
  const exportStatus: "pending" | "running" | "completed" | "failed" | "expired" | undefined = exported.data?.status;
  const download: string | null | undefined = exportStatus === "completed" ? exported.data?.downloadUrl : null;
  const progress: number | undefined = exported.data ? exported.data.progress.done / Math.max(1, exported.data.progress.total) : undefined;
  void download;
  void progress;

  // ---- compare (2-4 avatars of a project, their use per app per day) -------------------------
  const second = avatars.data?.items[1]?.id ?? "ava_unknown";
  const compared = await client.GET(`${API}/projects/{project_id}/compare`, {
    params: { path: { project_id }, query: { avatars: [avatar_id, second].join(","), days: 30 } },
  });
  const dates: string[] | undefined = compared.data?.dates;
  const perDay: number[] | undefined = compared.data?.avatars[0]?.byApp[0]?.daily;
  const shown: Avatar | undefined = compared.data?.avatars[0]?.avatar;
  const windowStart: string | undefined = compared.data?.from;
  void dates;
  void perDay;
  void shown;
  void windowStart;
  // ---- teams (issue 30) ---------------------------------------------------------------------
  const me = await client.GET(`${API}/me`);
  const myId: string | undefined = me.data?.userId;
  void myId;
  const member = await client.POST(`${API}/projects/{project_id}/members`, {
    params: { path: { project_id } }, body: { userId: "bob", role: "viewer" } });
  const memberRole: "viewer" | "editor" | "owner" | undefined = member.data?.role;
  void memberRole;
  const members = await client.GET(`${API}/projects/{project_id}/members`, { params: { path: { project_id } } });
  const isHome: boolean | undefined = members.data?.items[0]?.home;
  void isHome;
  await client.PUT(`${API}/projects/{project_id}/members/{member_id}`, {
    params: { path: { project_id, member_id: "bob" } }, body: { role: "editor" } });
  await client.DELETE(`${API}/projects/{project_id}/members/{member_id}`, { params: { path: { project_id, member_id: "bob" } } });
  const shared = await client.GET(`${API}/projects`, { params: { query: { shared: "true", limit: 20 } } });
  const sharedRole: "viewer" | "editor" | "owner" | null | undefined = shared.data?.items[0]?.myRole;
  void sharedRole;

  // ---- clean up -----------------------------------------------------------------------------
  await client.DELETE(`${API}/avatars/{avatar_id}`, { params: { path: { avatar_id } } });
  await client.DELETE(`${API}/projects/{project_id}`, { params: { path: { project_id } } });
  void stage;
}
