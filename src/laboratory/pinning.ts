import { createHash, X509Certificate } from "node:crypto";
import { connect, type DetailedPeerCertificate } from "node:tls";
import { LabtestError } from "../errors.js";
import { EXIT_REFUSED } from "./identity.js";

/**
 * Trust in a laboratory's certificate, as ssh's known_hosts: the certificate authority a
 * laboratory presents is pinned at login, and only it is trusted afterwards.
 */

/** `SHA256:<base64>` of a certificate (DER), as ssh prints a key's fingerprint. */
export function certificateFingerprint(der: Buffer): string {
  return `SHA256:${createHash("sha256").update(der).digest("base64").replace(/=+$/, "")}`;
}

/** Whether two fingerprints are the same, whether or not they were written with base64 padding. */
export function sameFingerprint(a: string, b: string): boolean {
  const normal = (fingerprint: string) => fingerprint.trim().replace(/=+$/, "");
  return normal(a) === normal(b);
}

/** The certificate at the top of the chain a laboratory presents: its certificate authority. */
export interface PresentedCertificate {
  fingerprint: string;
  /** The certificate in PEM, what a client trusts from then on. */
  pem: string;
  subject: string;
}

/** How long a connection to a laboratory may take to be made. */
export const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Connects to the laboratory at `origin` (no request is sent) and returns the top of the
 * certificate chain it presents, trusted or not: what login shows, and what a refusal names.
 */
export function presentedCertificate(origin: URL): Promise<PresentedCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: origin.hostname.replace(/^\[|\]$/g, ""),
      port: Number(origin.port || 443),
      servername: isIpAddress(origin.hostname) ? undefined : origin.hostname,
      rejectUnauthorized: false,
      timeout: CONNECT_TIMEOUT_MS,
    });
    socket.once("secureConnect", () => {
      const top = chainTop(socket.getPeerCertificate(true));
      socket.end();
      if (!top?.raw)
        return reject(new LabtestError(`the laboratory at ${origin.origin} presented no certificate`));
      const certificate = new X509Certificate(top.raw);
      resolve({
        fingerprint: certificateFingerprint(top.raw),
        pem: certificate.toString(),
        subject: certificate.subject,
      });
    });
    socket.once("timeout", () =>
      socket.destroy(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" })),
    );
    socket.once("error", (error) => reject(unreachable(origin, error)));
  });
}

/** Follows the chain up to the certificate that issued itself, or the last one presented. */
function chainTop(certificate: DetailedPeerCertificate): DetailedPeerCertificate | undefined {
  let top = certificate;
  while (top.issuerCertificate && top.issuerCertificate !== top && top.issuerCertificate.raw) {
    if (top.issuerCertificate.fingerprint256 === top.fingerprint256) break;
    top = top.issuerCertificate;
  }
  return Object.keys(top).length === 0 ? undefined : top;
}

function isIpAddress(hostname: string): boolean {
  return /^[\d.]+$/.test(hostname) || hostname.startsWith("[");
}

/** TLS verification failures: the laboratory presented a certificate the pinned one did not sign. */
const UNTRUSTED_CERTIFICATE = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_SIGNATURE_FAILURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
]);

/** Whether `error` is a certificate the pinned one does not vouch for. */
export function isUntrustedCertificate(error: unknown): boolean {
  return UNTRUSTED_CERTIFICATE.has((error as NodeJS.ErrnoException)?.code ?? "");
}

/**
 * The laboratory at `origin` presented a certificate other than the pinned one's: refused as ssh
 * refuses a changed host key, since someone may be in the middle.
 */
export class IdentityChangedError extends LabtestError {
  constructor(origin: string, pinned: string, presented: string | undefined, reason: string) {
    const summary = `REMOTE LABORATORY IDENTITY HAS CHANGED: ${origin} presented a certificate the pinned certificate authority does not vouch for`;
    super(
      summary,
      [
        {
          where: origin,
          what: `pinned ${pinned}, presented ${presented ?? "(could not be read)"} (${reason}); someone may be intercepting the connection, or the laboratory's certificate authority was replaced`,
          fix: `ask the laboratory's administrator for its fingerprint (labtest lab init prints it); if it is the new one: labtest logout ${origin} && labtest login ${origin} --token - --fingerprint SHA256:…`,
        },
      ],
      { exitCode: EXIT_REFUSED },
    );
  }
}

/** A laboratory that cannot be reached at all, said with what to check. */
export function unreachable(origin: URL, error: unknown): LabtestError {
  const code = (error as NodeJS.ErrnoException)?.code;
  const where = origin.origin;
  const reason =
    code === "ECONNREFUSED"
      ? {
          what: `nothing accepts connections on port ${origin.port || 443}`,
          fix: "check that labtest serve runs there and listens on that port",
        }
      : code === "ENOTFOUND" || code === "EAI_AGAIN"
        ? {
            what: `the name ${origin.hostname} cannot be resolved`,
            fix: "check the laboratory's address (--host, LABTEST_HOST or host: in .labtest.yml) and your DNS",
          }
        : code === "ETIMEDOUT"
          ? {
              what: `no connection within ${CONNECT_TIMEOUT_MS / 1000} s`,
              fix: "check the address and that a firewall lets you through",
            }
          : {
              what: (error as Error)?.message ?? String(error),
              fix: "check the laboratory's address and that labtest serve runs there",
            };
  return new LabtestError(`cannot reach the laboratory at ${where}`, [{ where, ...reason }], {
    cause: error,
  });
}
