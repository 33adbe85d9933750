import { Agent, createServer, type IncomingMessage, type Server, ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { BlockList, isIP, type Socket } from "node:net";
import { networkInterfaces } from "node:os";
import type * as httpProxy from "http-proxy-3";

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
  /** The route of a host name (without port), looked up afresh for every request; may throw. */
  route(host: string): Route | undefined;
  /** Every running experiment, for the splash page of unknown hosts; may throw. */
  routes(): Route[];
  /** How users reach the experiments, to write links on the splash page. */
  publicBase: PublicBase;
  /**
   * The addresses (or subnets, `10.0.0.0/8`) of the proxies in front of the router: their
   * X-Forwarded-* headers reach the apps, with the proxy's address appended to X-Forwarded-For.
   */
  trustedProxies: string[];
  /** The laboratory's id, sent with every answer so that a client can tell which laboratory answered. */
  laboratory: string;
  /**
   * Why the app of `route` did not answer, when its runtime can tell (it stopped, its engine is
   * away, its network is gone): the router's page says so instead of a bare 502.
   */
  whyNoAnswer?(route: Route): Promise<NoAnswer | undefined>;
}

/** Why an experiment does not answer: `reason` for the router-page header, `text` for whoever asked. */
export interface NoAnswer {
  reason: string;
  text: string;
}

/** The header naming the laboratory whose router answered. */
export const LABORATORY_HEADER = "x-labtest-laboratory";
/** The header on the router's own pages (why no experiment answered): absent when an app did. */
export const ROUTER_PAGE_HEADER = "x-labtest-router";

/**
 * The laboratory's router: a reverse proxy (HTTP and WebSocket) that maps the Host header to an
 * experiment. Routes are read for each request, so experiments come and go without a restart;
 * unknown hosts get a page listing the running experiments, and routes that cannot be read a 503.
 */
export function createRouter(options: RouterOptions): Server {
  // Connections to the apps are kept open and reused: a request does not pay for a new one.
  const agent = new Agent({ keepAlive: true });
  // Required here, not imported: only the router's own process proxies, while every command
  // imports this module for the router's addresses and headers.
  const { createProxyServer } = createRequire(import.meta.url)("http-proxy-3") as typeof httpProxy;
  const proxy = createProxyServer({ agent });
  proxy.on("proxyRes", (answer) => {
    // Only the router says which laboratory answered.
    delete answer.headers[LABORATORY_HEADER];
    delete answer.headers[ROUTER_PAGE_HEADER];
  });
  const bare = (error: Error, response: ServerResponse | Socket) => {
    if (response instanceof ServerResponse && !response.headersSent)
      page(response, 502, "no-answer", `labtest: the experiment did not answer (${error.message})\n`);
    else response.destroy();
  };
  proxy.on("error", (error, _request, response) => bare(error, response));
  const noAnswer = async (route: Route, error: Error, response: ServerResponse | Socket) => {
    const open = response instanceof ServerResponse && !response.headersSent;
    const why = open ? await options.whyNoAnswer?.(route).catch(() => undefined) : undefined;
    if (why && response instanceof ServerResponse) page(response, 503, why.reason, why.text);
    else bare(error, response);
  };
  const unreadable = unreadablePage();
  const trusted = proxyList(options.trustedProxies);
  const server = createServer((request, response) => {
    response.setHeader(LABORATORY_HEADER, options.laboratory);
    const route = lookUp(() => options.route(hostOf(request)));
    if (route instanceof Error) return unreadable(response, route);
    if (route) {
      withoutHopHeaders(request);
      forwarded(request, trusted);
      return proxy.web(request, response, { target: route.target }, (error, _request, answer) => {
        void noAnswer(route, error, answer);
      });
    }
    const routes = lookUp(() => options.routes());
    if (routes instanceof Error) return unreadable(response, routes);
    splash(response, routes, options.publicBase, hostOf(request));
  });
  server.on("upgrade", (request, socket, head) => {
    socket.on("error", () => socket.destroy());
    const route = lookUp(() => options.route(hostOf(request)));
    if (!route || route instanceof Error) return socket.destroy();
    forwarded(request, trusted);
    proxy.ws(request, socket, head, { target: route.target });
  });
  server.on("close", () => agent.destroy());
  return server;
}

/** What `read` returns, or the error it threw: a request never takes the router down. */
function lookUp<T>(read: () => T): T | Error {
  try {
    return read();
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/**
 * The app learns the Host the client asked for, the scheme it used and its address. Behind a
 * trusted proxy the client is the proxy's, which says so in its X-Forwarded-* headers; anyone
 * else's claims about earlier hops are replaced by what the router sees.
 */
function forwarded(request: IncomingMessage, trusted: BlockList): void {
  // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d.
  const peer = (request.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
  const headers = request.headers;
  if (!trusted.check(peer, isIP(peer) === 6 ? "ipv6" : "ipv4")) {
    for (const name of Object.keys(headers))
      if (name === "forwarded" || name.startsWith("x-forwarded-")) delete headers[name];
  }
  headers["x-forwarded-host"] ??= headers.host ?? "";
  headers["x-forwarded-proto"] ??= "http";
  headers["x-forwarded-for"] = headers["x-forwarded-for"] ? `${headers["x-forwarded-for"]}, ${peer}` : peer;
}

/** The addresses and subnets of `proxies` (validated by the router's settings) as one list. */
function proxyList(proxies: string[]): BlockList {
  const list = new BlockList();
  for (const proxy of proxies) {
    const [address = "", bits] = proxy.split("/");
    const family = isIP(address) === 6 ? "ipv6" : "ipv4";
    if (bits === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(bits), family);
  }
  return list;
}

/**
 * The client's connection options are its own: its `Connection: close` must not close the
 * kept-alive connection to the app (RFC 9110 §7.6.1).
 */
function withoutHopHeaders(request: IncomingMessage): void {
  const listed = (request.headers.connection ?? "").split(",").map((name) => name.trim().toLowerCase());
  for (const name of [...listed, "connection", "keep-alive", "proxy-connection"])
    delete request.headers[name];
}

/**
 * The 503 of routes that cannot be read. Why goes to the router's log (once per new reason), not
 * to whoever asked: the reason may name the laboratory's files.
 */
function unreadablePage(): (response: ServerResponse, error: Error) => void {
  let logged = "";
  return (response, error) => {
    if (error.message !== logged)
      process.stderr.write(`${new Date().toISOString()} cannot read the routes: ${error.message}\n`);
    logged = error.message;
    page(
      response,
      503,
      "routes-unreadable",
      "labtest: this laboratory cannot read its experiments right now (its router's log says why).\n" +
        "A damaged registry is set aside and rebuilt from what runs, by the router itself within seconds, and by any labtest command on the laboratory (e.g. labtest list).\n",
    );
  };
}

/** One of the router's own pages. */
function page(
  response: ServerResponse,
  status: number,
  reason: string,
  body: string,
  type = "text/plain",
): void {
  response.writeHead(status, { "content-type": `${type}; charset=utf-8`, [ROUTER_PAGE_HEADER]: reason });
  response.end(body);
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

/**
 * How users reach the experiments: the scheme and port of their URLs. The router's own (http,
 * its port) unless a proxy stands in front of it (a TLS proxy on 443: https, 443).
 */
export interface PublicBase {
  scheme: "http" | "https";
  port: number;
}

/** The port a URL of `scheme` leaves out. */
export const DEFAULT_PORTS: Record<PublicBase["scheme"], number> = { http: 80, https: 443 };

/** An experiment's URL, as users reach it through `base`. */
export function experimentUrl(host: string, base: PublicBase): string {
  return `${base.scheme}://${host}${base.port === DEFAULT_PORTS[base.scheme] ? "" : `:${base.port}`}/`;
}

function hostOf(request: IncomingMessage): string {
  return (request.headers.host ?? "").replace(/:\d+$/, "").toLowerCase();
}

/**
 * The laboratory asked by its own address (an IP, localhost, no Host at all): its home page, as a
 * load balancer's health check and LabTest's setting-up "Verify" step expect. Any other host
 * names an experiment this laboratory does not have.
 */
function asksTheLaboratory(host: string): boolean {
  return host === "" || host === "localhost" || isIP(host.replace(/^\[(.*)\]$/, "$1")) !== 0;
}

function splash(response: ServerResponse, routes: Route[], base: PublicBase, host: string): void {
  const html = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const items = routes
    .map((r) => {
      const url = experimentUrl(r.host, base);
      return `<li><a href="${html(url)}">${html(r.app)} / ${html(r.name)}</a> <small>(${html(r.branch)})</small></li>`;
    })
    .join("\n");
  page(
    response,
    asksTheLaboratory(host) ? 200 : 404,
    "no-experiment",
    `<!doctype html><meta charset="utf-8"><title>labtest laboratory</title>
<h1>No experiment here</h1>
<p>${routes.length ? "Running experiments:" : "No experiment is running on this laboratory."}</p>
<ul>
${items}
</ul>
`,
    "text/html",
  );
}
