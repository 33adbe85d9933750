import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { networkInterfaces } from "node:os";
import httpProxy from "http-proxy";

/** A running experiment as the router sees it. */
export interface Route {
  host: string;
  /** Where the app answers, e.g. http://127.0.0.1:41234. */
  target: string;
  app: string;
  name: string;
  branch: string;
}

export interface RouterOptions {
  /** The route of a host name (without port), looked up afresh for every request. */
  route(host: string): Route | undefined;
  /** Every running experiment, for the splash page of unknown hosts. */
  routes(): Route[];
  /** The port the router listens on, to write links on the splash page. */
  publicPort: number;
}

/**
 * The laboratory's router: a reverse proxy (HTTP and WebSocket) that maps the Host header to an
 * experiment. Routes are read for each request, so experiments come and go without a restart;
 * unknown hosts get a page listing the running experiments.
 */
export function createRouter(options: RouterOptions): Server {
  const proxy = httpProxy.createProxyServer({ xfwd: true, ws: true });
  proxy.on("error", (error, _request, response) => {
    if ("writeHead" in response && !response.headersSent) {
      response.writeHead(502, { "content-type": "text/plain; charset=utf-8" });
      response.end(`labtest: the experiment did not answer (${error.message})\n`);
    } else {
      response.destroy();
    }
  });
  const server = createServer((request, response) => {
    const route = options.route(hostOf(request));
    if (route) proxy.web(request, response, { target: route.target });
    else splash(response, options.routes(), options.publicPort);
  });
  server.on("upgrade", (request, socket, head) => {
    const route = options.route(hostOf(request));
    if (route) proxy.ws(request, socket, head, { target: route.target });
    else socket.destroy();
  });
  return server;
}

/**
 * Where a router listens by default: this machine's loopback, so a developer's experiments are
 * not open to the local network.
 */
export const LOOPBACK = "localhost";

/** The addresses a router listening on `address` binds: `localhost` is 127.0.0.1, and ::1 where IPv6 is on. */
export function listenAddresses(address: string): string[] {
  if (address !== LOOPBACK) return [address];
  const ipv6 = Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address === "::1"));
  return ipv6 ? ["127.0.0.1", "::1"] : ["127.0.0.1"];
}

/** An experiment's URL on a router listening on `port`. */
export function experimentUrl(host: string, port: number): string {
  return `http://${host}${port === 80 ? "" : `:${port}`}/`;
}

function hostOf(request: IncomingMessage): string {
  return (request.headers.host ?? "").replace(/:\d+$/, "").toLowerCase();
}

function splash(response: ServerResponse, routes: Route[], port: number): void {
  const html = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const items = routes
    .map((r) => {
      const url = experimentUrl(r.host, port);
      return `<li><a href="${html(url)}">${html(r.app)} / ${html(r.name)}</a> <small>(${html(r.branch)})</small></li>`;
    })
    .join("\n");
  response.writeHead(404, { "content-type": "text/html; charset=utf-8" });
  response.end(
    `<!doctype html><meta charset="utf-8"><title>labtest laboratory</title>
<h1>No experiment here</h1>
<p>${routes.length ? "Running experiments:" : "No experiment is running on this laboratory."}</p>
<ul>
${items}
</ul>
`,
  );
}
