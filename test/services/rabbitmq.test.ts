import { access, readFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import amqp from "amqplib";
import { describe, expect, test, vi } from "vitest";
import { LABELS } from "../../src/lab/labels.js";
import { dockerProvider } from "../../src/services/providers/docker.js";
import { localProvider } from "../../src/services/providers/local.js";
import type { ServerRecord } from "../../src/services/providers/provider.js";
import { docker, localImage, startContainer, whenReady } from "../support/docker.js";
import { serviceConfig, type TestLaboratory, testLaboratory } from "../support/laboratory.js";

/** Publishes `body` to a queue of the URL's vhost and takes it back, as an app would. */
async function roundTrip(url: string, body: string): Promise<string> {
  const connection = await amqp.connect(url);
  connection.on("error", () => undefined);
  try {
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue("notes", { durable: false });
    channel.sendToQueue(queue, Buffer.from(body));
    for (let attempt = 0; attempt < 50; attempt++) {
      const message = await channel.get(queue, { noAck: true });
      if (message) return message.content.toString();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`no message came back from ${queue}`);
  } finally {
    await connection.close();
  }
}

/** Whether a recorded server still exists: its container, or its process and data directory. */
async function serverExists(server: ServerRecord): Promise<boolean> {
  if (server.provider === "docker") {
    const filters = { label: [`${LABELS.server}=${server.id}`] };
    return (await docker.listContainers({ all: true, filters })).length > 0;
  }
  const present = (path: string) =>
    access(path).then(
      () => true,
      () => false,
    );
  return (await present(`/proc/${server.details.pid}`)) || present(String(server.details.dataDirectory));
}

/** The port of the epmd a native RabbitMQ server was given. */
async function epmdPort(server: ServerRecord): Promise<number> {
  const settings = await readFile(join(String(server.details.dataDirectory), "rabbitmq-env.conf"), "utf8");
  return Number(/^ERL_EPMD_PORT='(\d+)'$/m.exec(settings)?.[1]);
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

function providerOf(lab: TestLaboratory, server: ServerRecord) {
  return server.provider === "docker" ? dockerProvider(lab.registry) : localProvider(lab.registry);
}

/** The vhosts or users a server has, as its rabbitmqctl lists them. */
async function listed(
  lab: TestLaboratory,
  server: ServerRecord,
  what: "vhosts" | "users",
): Promise<string[]> {
  const { run } = await providerOf(lab, server).tools(server);
  const rabbitmqctl = ["/usr/lib/rabbitmq/bin/rabbitmqctl", "rabbitmqctl"];
  const output = await run(rabbitmqctl, [`list_${what}`, "--quiet", "--no-table-headers"]);
  return output.split("\n").flatMap((line) => line.split("\t")[0] || []);
}

async function serverOf(lab: TestLaboratory, id: string | undefined): Promise<ServerRecord> {
  return (await lab.registry.read<ServerRecord>("servers", id ?? "")) as ServerRecord;
}

describe.each(["docker", "local"] as const)("RabbitMQ on provider %s", (provider) => {
  test.each(["communal", "independent"] as const)(
    "%s: each experiment publishes and consumes on its own vhost, is refused on the other's, and down removes exactly its own",
    async (provisionType) => {
      const lab = await testLaboratory();
      const request = (experiment: string) => ({
        app: "shop",
        experiment,
        services: { queue: serviceConfig(provider, "rabbitmq", provisionType) },
      });
      const [[a], [b]] = [await lab.services.up(request("a")), await lab.services.up(request("b"))];
      expect(a).toMatchObject({ kind: "rabbitmq", provider, provisionType, status: "ready" });
      expect(a?.server === b?.server).toBe(provisionType === "communal");

      const appEnv = await lab.services.environment("shop", "a");
      const host =
        provider === "docker" ? (provisionType === "independent" ? "queue" : a?.server) : "127.0.0.1";
      const port = provider === "docker" ? "5672" : appEnv.QUEUE_PORT;
      expect(appEnv).toMatchObject({
        QUEUE_URL: `amqp://${appEnv.QUEUE_USER}:${appEnv.QUEUE_PASSWORD}@${host}:${port}/${appEnv.QUEUE_VHOST}`,
        RABBITMQ_URL: appEnv.QUEUE_URL,
        AMQP_URL: appEnv.QUEUE_URL,
      });

      // The test runs on the laboratory host: it takes the host-reachable variant of the same variables.
      const envA = await lab.services.environment("shop", "a", {}, { hostReachable: true });
      const envB = await lab.services.environment("shop", "b", {}, { hostReachable: true });
      expect(envA.QUEUE_VHOST).not.toBe(envB.QUEUE_VHOST);
      expect(await roundTrip(envA.QUEUE_URL as string, "from a")).toBe("from a");
      expect(await roundTrip(envB.QUEUE_URL as string, "from b")).toBe("from b");

      // A's user and password, pointed at B's vhost (on B's server).
      const intruder = new URL(envB.QUEUE_URL as string);
      intruder.username = encodeURIComponent(envA.QUEUE_USER as string);
      intruder.password = encodeURIComponent(envA.QUEUE_PASSWORD as string);
      if (provisionType === "independent") {
        // B's server has never heard of A's user.
        await expect(roundTrip(intruder.href, "intrusion")).rejects.toThrow(/ACCESS.REFUSED/);
      } else {
        // amqplib words a denied vhost as an unexpected ConnectionClose; the broker says why, in
        // a log line it may write after the refusal has reached the client.
        await expect(roundTrip(intruder.href, "intrusion")).rejects.toThrow(/ConnectionClose/);
        const server = await serverOf(lab, b?.server);
        await vi.waitFor(
          async () =>
            expect(await providerOf(lab, server).logs(server)).toContain(
              `access to vhost '${envB.QUEUE_VHOST}' refused for user '${envA.QUEUE_USER}'`,
            ),
          { timeout: 10_000, interval: 250 },
        );
      }

      const serverA = await serverOf(lab, a?.server);
      const portMapper = provider === "local" ? await epmdPort(serverA) : null;
      expect(await lab.services.down("shop", "a")).toEqual(["queue"]);
      // A native node's port mapper outlives it unless labtest stops it too.
      if (portMapper && provisionType === "independent") expect(await listening(portMapper)).toBe(false);
      // Its user is gone from the communal server; its own server is gone altogether.
      await expect(roundTrip(envA.QUEUE_URL as string, "after down")).rejects.toThrow(
        provisionType === "communal" ? /ACCESS.REFUSED/ : /ECONNREFUSED/,
      );
      expect(await serverExists(serverA)).toBe(provisionType === "communal");
      if (provisionType === "communal") {
        const [vhosts, users] = [await listed(lab, serverA, "vhosts"), await listed(lab, serverA, "users")];
        expect(vhosts).toContain(envB.QUEUE_VHOST);
        expect(vhosts).not.toContain(envA.QUEUE_VHOST);
        expect(users).toContain(envB.QUEUE_USER);
        expect(users).not.toContain(envA.QUEUE_USER);
      }
      expect(await roundTrip(envB.QUEUE_URL as string, "b still")).toBe("b still");
    },
  );
});

// The code path users run with rabbitmq:3 is the one tested: the local image honours its interface.
test("the image: RABBITMQ_DEFAULT_USER/PASS/VHOST make the first boot's account and vhost; others are refused", async () => {
  const container = await startContainer(localImage("rabbitmq"), {
    env: {
      RABBITMQ_DEFAULT_USER: "smoke",
      RABBITMQ_DEFAULT_PASS: "s3cret pw#1",
      RABBITMQ_DEFAULT_VHOST: "smoke/vh",
    },
    ports: [5672],
  });
  const url = (user: string, password: string) =>
    `amqp://${user}:${encodeURIComponent(password)}@127.0.0.1:${container.hostPort(5672)}/${encodeURIComponent("smoke/vh")}`;
  expect(await whenReady(container, "RabbitMQ", () => roundTrip(url("smoke", "s3cret pw#1"), "hello"))).toBe(
    "hello",
  );
  await expect(roundTrip(url("smoke", "wrong"), "hello")).rejects.toThrow(/ACCESS.REFUSED/);
  await expect(roundTrip(url("guest", "guest"), "hello")).rejects.toThrow(/ACCESS.REFUSED/);
});
