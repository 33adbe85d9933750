import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import getPort from "get-port";
import { expect, onTestFinished, test } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { createRouter, type Route, type RouterOptions } from "../../src/lab/router.js";
import { viaRouter } from "../support/experiments.js";

/**
 * An app on a free port: it answers HTTP with its name and the headers it received (JSON),
 * echoes WebSocket messages (keeping the handshake's headers), and counts the TCP connections made to it.
 */
async function app(name: string) {
  const server = createServer((request, response) =>
    response.end(JSON.stringify({ name, headers: request.headers })),
  );
  let connections = 0;
  let upgrade: IncomingHttpHeaders = {};
  server.on("connection", () => {
    connections += 1;
  });
  const sockets = new WebSocketServer({ server });
  sockets.on("connection", (socket, request) => {
    upgrade = request.headers;
    socket.on("message", (data) => socket.send(`${name} echoes ${data}`));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        sockets.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return {
    target: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    /** The headers of the last WebSocket handshake. */
    upgrade: () => upgrade,
  };
}

/** A router on a free port of 127.0.0.1 serving `routes` (host → route), for laboratory `lab-1`. */
async function router(routes: Map<string, Route>, more: Partial<RouterOptions> = {}) {
  const port = await getPort({ host: "127.0.0.1" });
  const server = createRouter({
    route: (host) => routes.get(host),
    routes: () => [...routes.values()],
    publicBase: { scheme: "http", port },
    trustedProxies: [],
    laboratory: "lab-1",
    ...more,
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return port;
}

const route = (name: string, target: string): Route => ({
  host: `shop-${name}.localhost`,
  target,
  app: "shop",
  name,
  branch: name,
});

test("the router maps Host to experiments for HTTP and WebSocket, picks up new routes, and lists them for unknown hosts", async () => {
  const routes = new Map<string, Route>();
  const apps = new Map<string, Awaited<ReturnType<typeof app>>>();
  const add = async (name: string) => {
    const started = await app(name);
    apps.set(name, started);
    routes.set(`shop-${name}.localhost`, route(name, started.target));
  };
  await add("a");
  const port = await router(routes);

  expect(JSON.parse((await viaRouter(port, "shop-a.localhost")).body).name).toBe("a");
  await add("b");
  expect(JSON.parse((await viaRouter(port, "shop-b.localhost:8080")).body).name).toBe("b");

  const socket = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { host: "shop-b.localhost" } });
  const reply = await new Promise<string>((resolve, reject) => {
    socket.on("open", () => socket.send("hello"));
    socket.on("message", (data) => resolve(String(data)));
    socket.on("error", reject);
  });
  socket.close();
  expect(reply).toBe("b echoes hello");
  expect(apps.get("b")?.upgrade()).toMatchObject({
    "x-forwarded-host": "shop-b.localhost",
    "x-forwarded-proto": "http",
    "x-forwarded-for": "127.0.0.1",
  });

  const splash = await viaRouter(port, "unknown.localhost");
  expect(splash.status).toBe(404);
  expect(splash.body).toContain(`<a href="http://shop-a.localhost:${port}/">shop / a</a>`);
  expect(splash.body).toContain(`<a href="http://shop-b.localhost:${port}/">shop / b</a>`);

  // The laboratory itself, asked by address (a load balancer's health check, LabTest's
  // setting_up_a_lab.rst "Verify" step): the splash page, 200.
  for (const address of ["127.0.0.1", `127.0.0.1:${port}`, "[::1]", "localhost", ""]) {
    const home = await viaRouter(port, address);
    expect([address, home.status]).toEqual([address, 200]);
    expect(home.body).toContain(`<a href="http://shop-a.localhost:${port}/">shop / a</a>`);
  }

  routes.delete("shop-a.localhost");
  expect((await viaRouter(port, "shop-a.localhost")).status).toBe(404);
});

test("the app learns the URL the client used and who the client is, whatever the client claims", async () => {
  const shop = await app("a");
  const port = await router(new Map([["shop-a.localhost", route("a", shop.target)]]));
  const { body } = await viaRouter(port, `shop-a.localhost:${port}`, {
    "x-forwarded-host": "evil.example.com",
    "x-forwarded-proto": "https",
    "x-forwarded-for": "203.0.113.9",
    // Naming them as hop-by-hop does not take them away either.
    connection: "close, x-forwarded-host, x-forwarded-for",
  });
  const seen = JSON.parse(body).headers as IncomingHttpHeaders;
  expect(seen.host).toBe(`shop-a.localhost:${port}`);
  expect(seen["x-forwarded-host"]).toBe(`shop-a.localhost:${port}`);
  expect(seen["x-forwarded-proto"]).toBe("http");
  expect(seen["x-forwarded-for"]).toBe("127.0.0.1");
});

test("from a trusted proxy the app learns what the proxy says, the proxy's address appended; from anyone else, what the router sees", async () => {
  const shop = await app("a");
  const routes = new Map([["shop-a.localhost", route("a", shop.target)]]);
  const seen = async (trustedProxies: string[]) => {
    const port = await router(routes, { trustedProxies });
    const { body } = await viaRouter(port, "shop-a.localhost", {
      "x-forwarded-host": "shop-a.test.example.com",
      "x-forwarded-proto": "https",
      "x-forwarded-for": "203.0.113.9",
    });
    return JSON.parse(body).headers as IncomingHttpHeaders;
  };
  expect(await seen(["127.0.0.0/8", "::1"])).toMatchObject({
    "x-forwarded-host": "shop-a.test.example.com",
    "x-forwarded-proto": "https",
    "x-forwarded-for": "203.0.113.9, 127.0.0.1",
  });
  expect(await seen(["10.0.0.1"])).toMatchObject({
    "x-forwarded-host": "shop-a.localhost",
    "x-forwarded-proto": "http",
    "x-forwarded-for": "127.0.0.1",
  });
});

test("the splash page links the experiments at their public URLs", async () => {
  const routes = new Map([["shop-a.localhost", route("a", "http://127.0.0.1:1")]]);
  const port = await router(routes, { publicBase: { scheme: "https", port: 443 } });
  expect((await viaRouter(port, "nowhere.localhost")).body).toContain(
    '<a href="https://shop-a.localhost/">shop / a</a>',
  );
});

test("requests to an app reuse one connection to it (keep-alive)", async () => {
  const shop = await app("a");
  const port = await router(new Map([["shop-a.localhost", route("a", shop.target)]]));
  for (let i = 0; i < 5; i++) expect((await viaRouter(port, "shop-a.localhost")).status).toBe(200);
  expect(shop.connections()).toBe(1);
});

test("every answer names the laboratory it comes from, and the router's own pages say so", async () => {
  const shop = await app("a");
  const gone = `http://127.0.0.1:${await getPort({ host: "127.0.0.1" })}`;
  const port = await router(
    new Map([
      ["shop-a.localhost", route("a", shop.target)],
      ["shop-gone.localhost", route("gone", gone)],
    ]),
  );
  const proxied = await viaRouter(port, "shop-a.localhost");
  expect(proxied.status).toBe(200);
  expect(proxied.headers["x-labtest-laboratory"]).toBe("lab-1");
  expect(proxied.headers["x-labtest-router"]).toBeUndefined();

  const splash = await viaRouter(port, "nowhere.localhost");
  expect([splash.status, splash.headers["x-labtest-laboratory"], splash.headers["x-labtest-router"]]).toEqual(
    [404, "lab-1", "no-experiment"],
  );
  const unanswered = await viaRouter(port, "shop-gone.localhost");
  expect([
    unanswered.status,
    unanswered.headers["x-labtest-laboratory"],
    unanswered.headers["x-labtest-router"],
  ]).toEqual([502, "lab-1", "no-answer"]);
});

test("a router whose routes cannot be read answers 503 and keeps serving", async () => {
  let broken = true;
  const shop = await app("a");
  const port = await router(new Map(), {
    route: (host) => {
      if (broken) throw new Error("database disk image is malformed");
      return host === "shop-a.localhost" ? route("a", shop.target) : undefined;
    },
    routes: () => {
      throw new Error("database disk image is malformed");
    },
  });
  for (const host of ["shop-a.localhost", "nowhere.localhost"]) {
    const answer = await viaRouter(port, host);
    expect(answer.status).toBe(503);
    expect(answer.headers["x-labtest-router"]).toBe("routes-unreadable");
    expect(answer.body).toContain("cannot read its experiments right now");
    expect(answer.body).not.toContain("malformed");
  }
  broken = false;
  expect((await viaRouter(port, "shop-a.localhost")).status).toBe(200);
});
