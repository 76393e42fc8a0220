// An agent that gets OpenAI access from keywarden, in Node 18+ with no dependency.
//
// File mode (default): read the key file for every request and again after an HTTP 401, because
// keys rotate; never print the key, only its fingerprint.
// Gateway mode (KEYWARDEN_MODE=gateway): no key at all; OPENAI_BASE_URL is keywarden's gateway
// (e.g. http://127.0.0.1:8787/openai/v1), which finds this process and injects the workload's key
// on the wire. With the official SDK: new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: "keywarden" }).
import { readFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";

const KEY_FILE = process.env.OPENAI_KEY_FILE ?? "/run/keywarden/openai/api_key";
const API = process.env.OPENAI_BASE_URL ?? "https://api.openai.com/v1";
const MODEL = process.env.OPENAI_MODEL ?? "gpt-4.1-mini";

const fingerprint = (key) => "sha256:" + createHash("sha256").update(key).digest("hex").slice(0, 16);

async function status() {
  try {
    return (await readFile(join(dirname(KEY_FILE), "status"), "utf8")).trim();
  } catch (e) {
    return `no status (${e.code})`;
  }
}

async function chat(key) {
  return fetch(`${API}/chat/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "Say hello." }] }),
  });
}

async function viaGateway() {
  const r = await chat("keywarden");
  const body = await r.json();
  if (r.ok) {
    console.log(`gateway: ${body.model} answered; tokens in ${body.usage?.prompt_tokens} out ${body.usage?.completion_tokens}`);
    return 0;
  }
  // keywarden's own refusals: {"error": {"type": "keywarden", "code": "...", "message": "..."}}
  console.log(`gateway refused (HTTP ${r.status}): ${body.error?.code}: ${body.error?.message}`);
  return 1;
}

async function viaFile() {
  for (let attempt = 0; attempt < 2; attempt++) {
    let key;
    try {
      key = await readFile(KEY_FILE, "ascii");
    } catch (e) {
      // EACCES: this process is not entitled; EIO: no valid key right now (see status).
      console.log(`no key (${e.code}): keywarden says: ${await status()}`);
      return 1;
    }
    const r = await chat(key);
    if (r.status === 401 && attempt === 0) {
      console.log(`key ${fingerprint(key)} refused (rotated?); reading the file again`);
      continue;
    }
    console.log(`HTTP ${r.status}`);
    return r.ok ? 0 : 1;
  }
  return 1;
}

process.exitCode = await (process.env.KEYWARDEN_MODE === "gateway" ? viaGateway() : viaFile());
