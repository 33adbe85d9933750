import { ConfigError } from "../errors.js";
import type { ConfigDocument } from "./formats.js";

/** Where the laboratory is, as the `host` option names it. */
export type LaboratoryAddress =
  | { kind: "local" }
  | { kind: "ssh"; host: string; user?: string; port?: number }
  | { kind: "https"; url: string };

const BARE_SSH =
  /^(?:(?<user>[^@\s/:]+)@)?(?<host>[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(?::(?<port>\d{1,5}))?$/;

/**
 * Parses `host`: `local`, `ssh://user@host[:port]`, `https://…`, or — as in LabTest — a bare
 * host, `user@host[:port]` or ssh-config alias, meaning SSH. Returns an error text when invalid.
 */
export function parseLaboratoryAddress(host: string): LaboratoryAddress | string {
  if (host === "local") return { kind: "local" };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(host)?.[1]?.toLowerCase();
  if (scheme === "https") {
    try {
      return { kind: "https", url: new URL(host).toString() };
    } catch {
      return `"${host}" is not a valid https URL`;
    }
  }
  if (scheme === "ssh") {
    let url: URL;
    try {
      url = new URL(host);
    } catch {
      return `"${host}" is not a valid ssh URL`;
    }
    if (!url.hostname) return `"${host}" names no host`;
    return sshAddress(url.hostname, decodeURIComponent(url.username) || undefined, url.port || undefined);
  }
  if (scheme !== undefined) return `scheme ${scheme}:// is not supported; use local, ssh://… or https://…`;
  const match = BARE_SSH.exec(host);
  if (!match?.groups?.host) return `"${host}" is neither local, a URL, nor [user@]host[:port]`;
  return sshAddress(match.groups.host, match.groups.user, match.groups.port);
}

function sshAddress(
  host: string,
  user: string | undefined,
  port: string | undefined,
): LaboratoryAddress | string {
  const portNumber = port === undefined ? undefined : Number(port);
  if (portNumber !== undefined && (portNumber < 1 || portNumber > 65535))
    return `port ${port} is out of range`;
  return {
    kind: "ssh",
    host,
    ...(user === undefined ? {} : { user }),
    ...(portNumber === undefined ? {} : { port: portNumber }),
  };
}

/** The origin a laboratory's URL is known by (https://host[:port], the default port left out). */
export function laboratoryOrigin(url: string): string {
  return new URL(url).origin;
}

/**
 * The `host` of the configuration found from `cwd` (or at `configPath`), read alone: for commands
 * that need no configuration, a configuration that is broken elsewhere — or unreadable — does
 * not stop them; only where it sends them matters. Undefined when none names a host.
 */
export async function configuredHost(
  cwd: string,
  configPath?: string,
): Promise<{ host: string; where: string } | undefined> {
  // The formats' parsers load with discovery, when a command looks: parsing an address needs none.
  const { findConfig } = await import("./discover.js");
  let document: ConfigDocument;
  try {
    document = await findConfig(cwd, configPath);
  } catch (error) {
    if (error instanceof ConfigError) return undefined;
    throw error;
  }
  const section = document.section as { host?: unknown } | null | undefined;
  return typeof section?.host === "string"
    ? { host: section.host, where: `${document.file} (labtest.host)` }
    : undefined;
}
