import { randomBytes } from "node:crypto";

/** A password for an administrator or a tenant: 144 random bits, URL-safe. */
export function randomPassword(): string {
  return randomBytes(18).toString("base64url");
}
