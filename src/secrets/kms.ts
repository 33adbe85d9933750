// Secrets encrypted with an AWS KMS key: encrypt and decrypt both ask KMS, so both need AWS
// credentials allowed to use the key.
import type { KMSClient, KMSClientConfig } from "@aws-sdk/client-kms";
import type { SecretProvider } from "./provider.js";

export interface KmsOptions {
  key_id: string;
  region?: string | undefined;
  endpoint?: string | undefined;
}

/** `clientConfig` lets the caller pass the SDK settings KMS needs beyond the options (a request handler in tests). */
export function kmsProvider(options: KmsOptions, clientConfig: KMSClientConfig = {}): SecretProvider {
  let client: KMSClient | undefined;
  // The SDK is loaded when a secret is first handled, not by every command.
  const sdk = () => import("@aws-sdk/client-kms");
  async function kms(): Promise<KMSClient> {
    if (!client) {
      const { KMSClient } = await sdk();
      // Credentials come from the standard AWS chain (environment, profile, instance role).
      client = new KMSClient({
        ...(options.region ? { region: options.region } : {}),
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        maxAttempts: 2,
        ...clientConfig,
      });
    }
    return client;
  }
  return {
    name: "aws/kms",
    async encrypt(plaintext) {
      const { EncryptCommand } = await sdk();
      const { CiphertextBlob } = await (await kms()).send(
        new EncryptCommand({ KeyId: options.key_id, Plaintext: Buffer.from(plaintext, "utf8") }),
      );
      return Buffer.from(CiphertextBlob ?? new Uint8Array()).toString("base64");
    },
    async decrypt(ciphertext) {
      const { DecryptCommand } = await sdk();
      const { Plaintext } = await (await kms()).send(
        new DecryptCommand({ KeyId: options.key_id, CiphertextBlob: Buffer.from(ciphertext, "base64") }),
      );
      return Buffer.from(Plaintext ?? new Uint8Array()).toString("utf8");
    },
  };
}
