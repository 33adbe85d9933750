import { ProvisionError } from "../errors.js";
import { programRunner } from "./local.js";
import type { ServerProvider, ServerRecord, ServerSpec } from "./provider.js";

/**
 * A server that already exists (a managed database), named by its admin URL in state
 * (`/services/external/<kind>/<app>` → `{url}`). labtest only creates and drops tenants on it.
 */
export function externalProvider(): ServerProvider {
  return {
    // One server per admin URL; its password may change without making it another server.
    communalIdentity(spec) {
      const version = spec.version ?? "default";
      return { distinct: (spec.url ?? "").replace(/\/\/[^@/]*@/, "//"), version, formerVersion: version };
    },
    check: async (spec) => {
      adminUrl(spec);
    },

    async ensure(spec, previous, save) {
      // Found again from its record (to drop a tenant) when the configuration is not at hand.
      if (!spec.url && previous) return previous;
      const url = adminUrl(spec);
      const record: ServerRecord = {
        id: spec.id,
        provider: "external",
        kind: spec.kind,
        provisionType: "communal",
        owner: null,
        admin: {
          host: url.hostname,
          port: url.port ? Number(url.port) : spec.module.port,
          user: url.username ? decodeURIComponent(url.username) : spec.module.adminUser,
          password: url.password ? decodeURIComponent(url.password) : null,
        },
        details: { url: `${url.protocol}//${url.host}` },
        createdAt: new Date().toISOString(),
      };
      await save(record);
      return record;
    },
    async stop(record) {
      throw new ProvisionError(`server ${record.id} is external: it is not the laboratory's to stop`, [
        {
          where: `server ${record.id}`,
          what: `it runs at ${record.details.url}, outside the laboratory`,
          fix: "stop it where it is managed; labtest servers remove forgets it once no experiment uses it",
        },
      ]);
    },
    remove: async () => undefined,
    // Nothing of the server is on the laboratory: its client programs come from the host's PATH.
    tools: async (record) => ({ run: programRunner(null), admin: record.admin }),
    attach: async (record) => ({ host: record.admin.host, port: record.admin.port }),
    releaseExperiment: async () => undefined,
    logs: async (record) => `(external server ${record.details.url}: its logs are not the laboratory's)`,
    stopped: async () => false,
    sweep: async () => undefined,
  };
}

/** The admin URL of the spec, parsed; a missing or unparsable one is the administrator's to fix. */
function adminUrl(spec: ServerSpec): URL {
  if (!spec.url)
    throw new ProvisionError(`no external ${spec.kind} server is configured`, [
      {
        where: `state /services/external/${spec.kind}/<app>`,
        what: "provider external needs the admin URL of an existing server",
        fix: `ask the laboratory's administrator to set {"url": "<scheme>://admin:password@host:port"} there`,
      },
    ]);
  try {
    return new URL(spec.url);
  } catch (error) {
    throw new ProvisionError(
      `the external ${spec.kind} URL in state is not a URL`,
      [
        {
          where: `state /services/external/${spec.kind}`,
          what: "url cannot be parsed",
          fix: "write it as scheme://user:password@host:port",
        },
      ],
      { cause: error },
    );
  }
}
