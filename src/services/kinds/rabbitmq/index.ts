import { databaseName, roleName } from "../../../config/names.js";
import type { ServiceKindModule } from "../kind.js";
import { userInfo } from "../sql.js";
import { ADMIN_USER, openAdmin } from "./admin.js";
import { native } from "./native.js";

/**
 * RabbitMQ: a tenant is a virtual host and a user with every permission on it and on nothing
 * else; on the experiment's own server the user is also an administrator.
 */
export const rabbitmq: ServiceKindModule = {
  family: "amqp",
  port: 5672,
  adminUser: ADMIN_USER,
  tenantNames: (app, experiment, service) => ({
    database: databaseName(app, experiment, service),
    user: roleName(app, experiment, service),
    prefix: null,
  }),
  url: (endpoint, tenant) =>
    `amqp://${userInfo(tenant)}@${endpoint.host}:${endpoint.port}/${encodeURIComponent(tenant.database ?? "")}`,
  extraEnv: (c) => ({ VHOST: c.database ?? "" }),
  wellKnownEnv: (c) => ({ RABBITMQ_URL: c.url, AMQP_URL: c.url }),
  openAdmin,
  container: {
    repository: "rabbitmq",
    version: "3",
    dataDirectory: "/var/lib/rabbitmq",
    adminEnvironment: (password) => ({ RABBITMQ_DEFAULT_USER: ADMIN_USER, RABBITMQ_DEFAULT_PASS: password }),
    command: () => ({}),
  },
  native,
};
