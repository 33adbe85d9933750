// Secrets encrypted to the laboratory's age identity: anyone with the recipient (from state) can
// encrypt; only the laboratory, which holds the identity, can decrypt.
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import writeFileAtomic from "write-file-atomic";
import { SecretError } from "./errors.js";
import type { SecretProvider } from "./provider.js";

// age-encryption (with its post-quantum and curve libraries) is loaded when a secret or the
// identity is first handled, not by every command.
const age = () => import("age-encryption");

/** Where a laboratory keeps its age identity. */
export function identityFile(home: string): string {
  return join(home, "secrets", "age-identity.txt");
}

/**
 * Creates the laboratory's age identity unless it has one (readable by its owner only);
 * resolves to its recipient, which goes into state for whoever encrypts.
 */
export async function initAgeIdentity(home: string): Promise<{ recipient: string; created: boolean }> {
  const file = identityFile(home);
  const existing = await readIdentity(file);
  const { generateX25519Identity, identityToRecipient } = await age();
  if (existing) return { recipient: await identityToRecipient(existing), created: false };
  const identity = await generateX25519Identity();
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, `${identity}\n`, { mode: 0o600 });
  return { recipient: await identityToRecipient(identity), created: true };
}

async function readIdentity(file: string): Promise<string | undefined> {
  const text = await readFile(file, "utf8").catch(() => undefined);
  return text?.split("\n").find((line) => line.startsWith("AGE-SECRET-KEY-"));
}

export function ageProvider(recipients: string[], home: string): SecretProvider {
  return {
    name: "local/age",
    async encrypt(plaintext) {
      const encrypter = new (await age()).Encrypter();
      for (const recipient of recipients) {
        try {
          encrypter.addRecipient(recipient);
        } catch (error) {
          throw new SecretError(`"${recipient}" is not an age recipient`, [
            {
              where: "state /secrets: options.recipients",
              what: (error as Error).message,
              fix: "use the recipient `labtest secrets init` printed on the laboratory (age1…)",
            },
          ]);
        }
      }
      return Buffer.from(await encrypter.encrypt(plaintext)).toString("base64");
    },
    async decrypt(ciphertext) {
      const identity = await readIdentity(identityFile(home));
      if (!identity)
        throw new SecretError("this laboratory has no age identity to decrypt with", [
          {
            where: identityFile(home),
            what: "missing, or without an AGE-SECRET-KEY line",
            fix: "run `labtest secrets init` on the laboratory, put its recipient in state /secrets, and encrypt again",
          },
        ]);
      const decrypter = new (await age()).Decrypter();
      decrypter.addIdentity(identity);
      return decrypter.decrypt(Buffer.from(ciphertext, "base64"), "text");
    },
  };
}
