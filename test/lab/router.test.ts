import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import getPort from "get-port";
import { expect, onTestFinished, test } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { createRouter, type Route } from "../../src/lab/router.js";
import { viaRouter } from "../support/experiments.js";

/** An app answering HTTP with its name and echoing WebSocket messages, on a free port. */
async function app(name: string): Promise<string> {
  const server = createServer((_request, response) => response.end(`${name} answered\n`));
  const sockets = new WebSocketServer({ server });
  sockets.on("connection", (socket) => socket.on("message", (data) => socket.send(`${name} echoes ${data}`)));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        sockets.close();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test("the router maps Host to experiments for HTTP and WebSocket, picks up new routes, and lists them for unknown hosts", async () => {
  const routes = new Map<string, Route>();
  const add = async (name: string) => {
    const host = `shop-${name}.localhost`;
    routes.set(host, { host, target: await app(name), app: "shop", name, branch: name });
  };
  await add("a");
  const port = await getPort({ host: "127.0.0.1" });
  const router = createRouter({
    route: (host) => routes.get(host),
    routes: () => [...routes.values()],
    publicPort: port,
  });
  await new Promise<void>((resolve) => router.listen(port, "127.0.0.1", resolve));
  onTestFinished(() => new Promise<void>((resolve) => router.close(() => resolve())));

  expect(await viaRouter(port, "shop-a.localhost")).toEqual({ status: 200, body: "a answered\n" });
  await add("b");
  expect(await viaRouter(port, "shop-b.localhost:8080")).toEqual({ status: 200, body: "b answered\n" });

  const socket = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { host: "shop-b.localhost" } });
  const reply = await new Promise<string>((resolve, reject) => {
    socket.on("open", () => socket.send("hello"));
    socket.on("message", (data) => resolve(String(data)));
    socket.on("error", reject);
  });
  socket.close();
  expect(reply).toBe("b echoes hello");

  const splash = await viaRouter(port, "unknown.localhost");
  expect(splash.status).toBe(404);
  expect(splash.body).toContain(`<a href="http://shop-a.localhost:${port}/">shop / a</a>`);
  expect(splash.body).toContain(`<a href="http://shop-b.localhost:${port}/">shop / b</a>`);

  routes.delete("shop-a.localhost");
  expect((await viaRouter(port, "shop-a.localhost")).status).toBe(404);
});
