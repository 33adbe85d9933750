import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { laboratoryOrigin } from "../config/host.js";
import { ConfigError } from "../errors.js";
import { AuthenticationError } from "./identity.js";
import { presentedCertificate, sameFingerprint } from "./pinning.js";

/** What a client keeps of a laboratory it logged in to: where, its token, and the pinned CA. */
export interface Credential {
  /** The laboratory's origin: https://host[:port]. */
  url: string;
  token: string;
  /** `SHA256:<base64>` of `ca`. */
  fingerprint: string;
  /** The certificate authority pinned at login, in PEM: the only one trusted for this laboratory. */
  ca: string;
}

const credentialSchema = z.object({
  url: z.string(),
  token: z.string().min(1),
  fingerprint: z.string(),
  ca: z.string(),
});
const fileSchema = z.object({ laboratories: z.array(credentialSchema) });

/** The user's labtest configuration directory: LABTEST_CONFIG_DIR, else $XDG_CONFIG_HOME/labtest, else ~/.config/labtest. */
export function userConfigDir(env: NodeJS.ProcessEnv): string {
  if (env.LABTEST_CONFIG_DIR) return env.LABTEST_CONFIG_DIR;
  return join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config"), "labtest");
}

/** The file holding the tokens: readable by its owner only. */
export function credentialsFile(env: NodeJS.ProcessEnv): string {
  return join(userConfigDir(env), "credentials.json");
}

/** Every laboratory logged in to. */
export async function readCredentials(env: NodeJS.ProcessEnv): Promise<Credential[]> {
  const file = credentialsFile(env);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  let parsed: ReturnType<typeof fileSchema.safeParse>;
  try {
    parsed = fileSchema.safeParse(JSON.parse(text));
  } catch {
    parsed = fileSchema.safeParse(undefined);
  }
  if (parsed.success) return parsed.data.laboratories;
  throw new ConfigError(`cannot read the credentials in ${file}`, [
    {
      where: file,
      what: "it is not the JSON labtest login writes",
      fix: `remove it and log in again (labtest login URL --token -)`,
    },
  ]);
}

/** Stores `credential`, replacing any for the same laboratory; the file 0600 in a 0700 directory. */
export async function saveCredential(env: NodeJS.ProcessEnv, credential: Credential): Promise<void> {
  const others = (await readCredentials(env)).filter((c) => c.url !== credential.url);
  await writeCredentials(env, [...others, credential]);
}

/** Forgets the laboratory at `url`; whether there was a credential for it. */
export async function removeCredential(env: NodeJS.ProcessEnv, url: string): Promise<boolean> {
  const all = await readCredentials(env);
  const kept = all.filter((c) => c.url !== laboratoryOrigin(url));
  if (kept.length === all.length) return false;
  await writeCredentials(env, kept);
  return true;
}

async function writeCredentials(env: NodeJS.ProcessEnv, laboratories: Credential[]): Promise<void> {
  const dir = userConfigDir(env);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  // Written aside and renamed: a reader never sees half a file, and the tokens never sit in a file others may read.
  const temporary = join(dir, `.credentials.${randomBytes(6).toString("hex")}.tmp`);
  await writeFile(temporary, `${JSON.stringify({ laboratories }, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, credentialsFile(env));
}

/**
 * The credential to reach the laboratory at `url` with: the stored one, its token replaced by
 * LABTEST_TOKEN when set (CI). With LABTEST_TOKEN and no login, LABTEST_FINGERPRINT pins the
 * certificate authority for this run, as `login --fingerprint` would.
 */
export async function laboratoryCredential(url: string, env: NodeJS.ProcessEnv): Promise<Credential> {
  const origin = laboratoryOrigin(url);
  const stored = (await readCredentials(env)).find((c) => c.url === origin);
  const token = env.LABTEST_TOKEN || stored?.token;
  if (stored && token) return { ...stored, token };
  if (token && env.LABTEST_FINGERPRINT) {
    const presented = await presentedCertificate(new URL(origin));
    if (!sameFingerprint(presented.fingerprint, env.LABTEST_FINGERPRINT))
      throw new AuthenticationError(
        `the laboratory at ${origin} presents the certificate authority ${presented.fingerprint}, not LABTEST_FINGERPRINT's ${env.LABTEST_FINGERPRINT}`,
        "check LABTEST_FINGERPRINT against the fingerprint labtest lab init printed on the laboratory",
      );
    return { url: origin, token, fingerprint: presented.fingerprint, ca: presented.pem };
  }
  throw new AuthenticationError(
    `not logged in to the laboratory at ${origin}`,
    token
      ? `set LABTEST_FINGERPRINT to the laboratory's certificate fingerprint (labtest lab init printed it), or labtest login ${origin} --token -`
      : `labtest login ${origin} --token - (the token on standard input); in CI: LABTEST_TOKEN and LABTEST_FINGERPRINT`,
  );
}
