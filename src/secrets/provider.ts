/** Encrypts values for a laboratory and reveals them there. Ciphertexts are base64 text. */
export interface SecretProvider {
  /** What it is, for messages: "local/age", "aws/kms". */
  readonly name: string;
  encrypt(plaintext: string): Promise<string>;
  decrypt(ciphertext: string): Promise<string>;
}
