import { databaseName, roleName } from "../../config/names.js";
import type { Tenant } from "../model.js";
import type { ServiceKindModule } from "./kind.js";

/** `user:password`, URL-encoded. */
export function userInfo(tenant: Tenant): string {
  return `${encodeURIComponent(tenant.user ?? "")}:${encodeURIComponent(tenant.password ?? "")}`;
}

/**
 * What every SQL kind shares: a database and a role per tenant, a `scheme://` URL naming the
 * database, and DATABASE_URL with its parts as the well-known variables.
 */
export function sqlTenancy(
  scheme: string,
): Pick<ServiceKindModule, "family" | "tenantNames" | "url" | "wellKnownEnv"> {
  return {
    family: "sql",
    tenantNames: (app, experiment, service) => ({
      database: databaseName(app, experiment, service),
      user: roleName(app, experiment, service),
      prefix: null,
    }),
    url: (endpoint, tenant) =>
      `${scheme}://${userInfo(tenant)}@${endpoint.host}:${endpoint.port}/${encodeURIComponent(tenant.database ?? "")}`,
    wellKnownEnv: (c) => ({
      DATABASE_URL: c.url,
      DATABASE_NAME: c.database ?? "",
      DATABASE_USERNAME: c.user ?? "",
      DATABASE_PASSWORD: c.password ?? "",
    }),
  };
}
