// @peculiar/x509 needs a Reflect polyfill loaded before it.
import "reflect-metadata";
import { createHash, X509Certificate as NodeCertificate, randomBytes, webcrypto } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { ConfigError } from "../errors.js";

/** EC P-256 with SHA-256: small keys every TLS client takes. */
const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const DAY_MS = 24 * 60 * 60 * 1000;
const CA_DAYS = 10 * 365;
/** Two years: renewed with `labtest lab init --force`, which keeps the CA clients pinned. */
const SERVER_DAYS = 2 * 365;

/** The laboratory's TLS files, in `<home>/tls/`. */
export interface TlsFiles {
  ca: string;
  caKey: string;
  /** The server's certificate followed by the CA's. */
  cert: string;
  key: string;
}

export function tlsFiles(home: string): TlsFiles {
  const directory = join(home, "tls");
  return {
    ca: join(directory, "ca.pem"),
    caKey: join(directory, "ca-key.pem"),
    cert: join(directory, "server.pem"),
    key: join(directory, "server-key.pem"),
  };
}

export interface TlsInitOptions {
  /** Host names the server is reached by, besides localhost and this machine's name. */
  names?: string[];
  /** IP addresses it is reached at, besides 127.0.0.1 and ::1. */
  ips?: string[];
  /** Renew the server certificate (the CA stays: clients keep their pin). */
  force?: boolean;
}

export interface TlsInitialised {
  files: TlsFiles;
  /** The CA's fingerprint, `SHA256:<base64>`: what a client pins. */
  fingerprint: string;
  createdCa: boolean;
  createdServer: boolean;
}

/**
 * Makes the laboratory's CA (unless it has one) and a server certificate signed by it (unless
 * it has one, or `force`). Keys are written readable by their owner only.
 */
export async function initLaboratoryTls(home: string, options: TlsInitOptions = {}): Promise<TlsInitialised> {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const files = tlsFiles(home);
  await mkdir(join(home, "tls"), { recursive: true, mode: 0o700 });
  let ca = await existingCa(files);
  const createdCa = ca === undefined;
  ca ??= await createCa(files);
  const createdServer = options.force === true || createdCa || !(await exists(files.cert));
  if (createdServer) await createServerCertificate(files, ca, serverNames(options));
  return { files, fingerprint: certificateFingerprint(ca.pem), createdCa, createdServer };
}

/**
 * The SHA-256 fingerprint of the first certificate in `pem`, written as ssh writes a key's:
 * `SHA256:` and the digest in base64 without padding.
 */
export function certificateFingerprint(pem: string): string {
  const digest = createHash("sha256").update(new NodeCertificate(pem).raw).digest("base64");
  return `SHA256:${digest.replace(/=+$/, "")}`;
}

/** The certificate and key `labtest serve` presents; a clear error when they are missing. */
export async function readServerTls(
  files: Pick<TlsFiles, "cert" | "key">,
): Promise<{ cert: string; key: string }> {
  try {
    return { cert: await readFile(files.cert, "utf8"), key: await readFile(files.key, "utf8") };
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).path ?? files.cert;
    throw new ConfigError(
      `the laboratory has no TLS certificate to serve with`,
      [
        {
          where: missing,
          what: (error as Error).message,
          fix: "run labtest lab init (it makes a laboratory CA and a server certificate), or give --cert FILE --key FILE",
        },
      ],
      { cause: error },
    );
  }
}

interface Ca {
  pem: string;
  certificate: x509.X509Certificate;
  key: webcrypto.CryptoKey;
}

async function existingCa(files: TlsFiles): Promise<Ca | undefined> {
  if (!(await exists(files.ca)) || !(await exists(files.caKey))) return undefined;
  const pem = await readFile(files.ca, "utf8");
  const der = x509.PemConverter.decodeFirst(await readFile(files.caKey, "utf8"));
  const key = await webcrypto.subtle.importKey("pkcs8", der, ALGORITHM, true, ["sign"]);
  return { pem, certificate: new x509.X509Certificate(pem), key };
}

async function createCa(files: TlsFiles): Promise<Ca> {
  const keys = await generateKeys();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=labtest laboratory CA ${hostname()}`,
    ...validity(CA_DAYS),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pem = certificate.toString("pem");
  await writeFile(files.caKey, await privateKeyPem(keys.privateKey), { mode: 0o600 });
  await writeFile(files.ca, `${pem}\n`, { mode: 0o644 });
  return { pem, certificate, key: keys.privateKey };
}

async function createServerCertificate(
  files: TlsFiles,
  ca: Ca,
  names: x509.JsonGeneralName[],
): Promise<void> {
  const keys = await generateKeys();
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${hostname()}`,
    issuer: ca.certificate.subject,
    ...validity(SERVER_DAYS),
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate.publicKey),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  await writeFile(files.key, await privateKeyPem(keys.privateKey), { mode: 0o600 });
  await writeFile(files.cert, `${certificate.toString("pem")}\n${ca.pem}\n`, { mode: 0o644 });
}

/** localhost, the loopback addresses, this machine's name, and what the administrator adds. */
function serverNames(options: TlsInitOptions): x509.JsonGeneralName[] {
  const dns = [...new Set(["localhost", hostname(), ...(options.names ?? [])])];
  const ips = [...new Set(["127.0.0.1", "::1", ...(options.ips ?? [])])];
  return [
    ...dns.map((value) => ({ type: "dns" as const, value })),
    ...ips.map((value) => ({ type: "ip" as const, value })),
  ];
}

function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALGORITHM, true, [
    "sign",
    "verify",
  ]) as Promise<webcrypto.CryptoKeyPair>;
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return `${x509.PemConverter.encode(await webcrypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY")}\n`;
}

/** A positive 128-bit serial: unique without a counter to keep. */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString("hex");
}

/** From an hour ago (a client's clock a little behind still accepts it) for `days`. */
function validity(days: number): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - 60 * 60 * 1000), notAfter: new Date(now + days * DAY_MS) };
}

async function exists(path: string): Promise<boolean> {
  return readFile(path).then(
    () => true,
    () => false,
  );
}
