// Secrets in the experiment configuration: `ENC[<ciphertext>]` anywhere inside a value, revealed
// on the laboratory only when it writes an experiment's environment. The laboratory's state says
// how (`/secrets`): local/age or aws/kms.
import type { KMSClientConfig } from "@aws-sdk/client-kms";
import { z } from "zod";
import { ENV_KEY } from "../config/schema.js";
import { dottedKey, problemsFromIssues } from "../problems.js";
import type { StateStore } from "../state/index.js";
import { ageProvider } from "./age.js";
import { SecretError } from "./errors.js";
import { kmsProvider } from "./kms.js";
import { rememberSecret } from "./mask.js";
import type { SecretProvider } from "./provider.js";

export { identityFile, initAgeIdentity } from "./age.js";
export { SecretError } from "./errors.js";
export { MASK, maskSecrets } from "./mask.js";
export type { SecretProvider } from "./provider.js";

/** The state key that names the laboratory's secret provider. */
export const SECRETS_KEY = "/secrets";

/** An encrypted value inside a text: `ENC[` base64 `]`. */
const ENCRYPTED = /ENC\[([A-Za-z0-9+/=_-]*)\]/g;

const secretsSchema = z.discriminatedUnion("provider", [
  z.strictObject({
    provider: z.literal("local"),
    service: z.literal("age"),
    options: z.strictObject({ recipients: z.array(z.string().min(1)).min(1) }),
  }),
  z.strictObject({
    provider: z.literal("aws"),
    service: z.literal("kms"),
    options: z.strictObject({
      key_id: z.string().min(1),
      region: z.string().min(1).optional(),
      endpoint: z.string().url().optional(),
    }),
  }),
]);

/** What an encryption library or service said went wrong: its error's kind and message, where they say something. */
function reason(error: Error): string {
  const kind = error.name !== "Error" ? error.name : "";
  const message = error.message && error.message !== "UnknownError" ? error.message : "";
  return [kind, message].filter(Boolean).join(": ") || "failed";
}

export function hasSecrets(text: string): boolean {
  return new RegExp(ENCRYPTED.source).test(text);
}

/** What `encryptAssignment` encrypts of `text`: VALUE of KEY=VALUE, or all of it. */
export function assignment(text: string, whole = false): { key?: string; value: string } {
  const eq = text.indexOf("=");
  const key = text.slice(0, eq);
  return !whole && eq > 0 && ENV_KEY.test(key) ? { key, value: text.slice(eq + 1) } : { value: text };
}

/** What the laboratory's state says at /secrets: how values are encrypted for it and revealed on it. */
export type SecretsConfig = z.infer<typeof secretsSchema>;

export type SecretsOptions = {
  /** The laboratory's home, where its age identity is kept. */
  home: string;
  /** SDK settings for KMS beyond the state's options (tests give a request handler). */
  kms?: KMSClientConfig;
} & (
  | { state: StateStore }
  /** A client encrypting for a laboratory: the /secrets that laboratory sent (checked here as well). */
  | { config: unknown }
);

/** The laboratory's secrets: encrypting for it, and revealing `ENC[…]` values on it. */
export class Secrets {
  private provider: Promise<SecretProvider> | undefined;

  constructor(private readonly options: SecretsOptions) {}

  /** `ENC[…]` of `plaintext`, for the laboratory's provider. */
  async encrypt(plaintext: string): Promise<string> {
    return `ENC[${await (await this.secretProvider("the value to encrypt")).encrypt(plaintext)}]`;
  }

  /**
   * `KEY=VALUE` with VALUE encrypted (split at the first `=`), or the whole text encrypted
   * when it is not an assignment or `whole` is set.
   */
  async encryptAssignment(text: string, whole = false): Promise<string> {
    const { key, value } = assignment(text, whole);
    const encrypted = await this.encrypt(value);
    return key === undefined ? encrypted : `${key}=${encrypted}`;
  }

  /**
   * `values` with every `ENC[…]` inside them decrypted (the text around each is kept). A value
   * that cannot be revealed is an error naming `where(key)`. Revealed values are remembered, so
   * that what this process prints can be masked.
   */
  async reveal(
    values: Record<string, string>,
    where: (key: string) => string,
  ): Promise<Record<string, string>> {
    const entries = await Promise.all(
      Object.entries(values).map(async ([key, value]): Promise<[string, string]> => {
        if (!hasSecrets(value)) return [key, value];
        const provider = await this.secretProvider(where(key));
        const parts: string[] = [];
        let last = 0;
        for (const match of value.matchAll(ENCRYPTED)) {
          parts.push(value.slice(last, match.index));
          const plaintext = await provider.decrypt(match[1] ?? "").catch((error: Error) => {
            throw new SecretError(`cannot decrypt ${where(key)}`, [
              {
                where: where(key),
                what: `${provider.name}: ${reason(error)}`,
                fix: "the value was encrypted for another laboratory or key, or damaged: encrypt it again with `labtest encrypt` and commit it",
              },
            ]);
          });
          rememberSecret(plaintext);
          parts.push(plaintext);
          last = (match.index ?? 0) + match[0].length;
        }
        parts.push(value.slice(last));
        return [key, parts.join("")];
      }),
    );
    return Object.fromEntries(entries);
  }

  /** The provider state names at /secrets, read once; `needs` says what asked, for the error. */
  private secretProvider(needs: string): Promise<SecretProvider> {
    this.provider ??= this.openProvider().catch((error) => {
      this.provider = undefined;
      throw error;
    });
    return this.provider.catch((error: SecretError) => {
      throw new SecretError(error.message.split("\n")[0] ?? "", [
        { where: needs, what: "holds an ENC[…] value, or asks for one" },
        ...error.problems,
      ]);
    });
  }

  private async openProvider(): Promise<SecretProvider> {
    const { options } = this;
    const config =
      "config" in options ? checkSecretsConfig(options.config) : await secretsConfig(options.state);
    return config.provider === "local"
      ? ageProvider(config.options.recipients, options.home)
      : kmsProvider(config.options, options.kms);
  }
}

/** The laboratory's /secrets, checked: what `labtest encrypt` needs from it. */
export async function secretsConfig(state: StateStore): Promise<SecretsConfig> {
  const values = await state.read([SECRETS_KEY]);
  if (!values.has(SECRETS_KEY))
    throw new SecretError(
      `the laboratory's state has no ${SECRETS_KEY}: nothing says how to encrypt or decrypt`,
      [
        {
          where: `state ${SECRETS_KEY}`,
          what: "missing",
          fix: `run \`labtest secrets init\` on the laboratory and put what it prints at ${SECRETS_KEY}, e.g. {"provider": "local", "service": "age", "options": {"recipients": ["age1…"]}}`,
        },
      ],
    );
  return checkSecretsConfig(values.get(SECRETS_KEY));
}

function checkSecretsConfig(value: unknown): SecretsConfig {
  const parsed = secretsSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new SecretError(
    `state ${SECRETS_KEY} does not name a secret provider labtest has`,
    problemsFromIssues(parsed.error.issues, {
      keyName: (path) => dottedKey([SECRETS_KEY, ...path]),
      lineOf: () => undefined,
      knownKeysAt: () => ["provider", "service", "options"],
    }).map((p) => ({
      ...p,
      fix: p.fix ?? "use local/age (options.recipients) or aws/kms (options.key_id)",
    })),
  );
}
