import type { Laboratory } from "./laboratory.js";
import type { EventSink, Requests } from "./protocol.js";
import type { RequestKind } from "./wire.js";

/** What a laboratory answers a request of kind K with: what the Laboratory method resolves to. */
export type Answer<K extends RequestKind> = Awaited<ReturnType<Laboratory[K]>>;

/**
 * A laboratory on another machine: every operation is one request carried by `call`, which a
 * transport (HTTPS, SSH) implements once. Events arrive as the laboratory reports them; when
 * `signal` aborts, the transport lets go of the request and the laboratory stops it.
 */
export abstract class RemoteLaboratory implements Laboratory {
  protected abstract call<K extends RequestKind>(
    kind: K,
    request: Requests[K],
    events?: EventSink,
    signal?: AbortSignal,
  ): Promise<Answer<K>>;

  abstract close(): Promise<void>;

  create(request: Requests["create"], events?: EventSink) {
    return this.call("create", request, events);
  }
  update(request: Requests["update"], events?: EventSink) {
    return this.call("update", request, events);
  }
  codeHave(request: Requests["codeHave"]) {
    return this.call("codeHave", request);
  }
  codePush(request: Requests["codePush"]) {
    return this.call("codePush", request);
  }
  delete(request: Requests["delete"], events?: EventSink) {
    return this.call("delete", request, events);
  }
  list(request: Requests["list"]) {
    return this.call("list", request);
  }
  status(request: Requests["status"]) {
    return this.call("status", request);
  }
  logs(request: Requests["logs"], events: EventSink, signal?: AbortSignal) {
    return this.call("logs", request, events, signal);
  }
  exec(request: Requests["exec"], events: EventSink, signal?: AbortSignal) {
    return this.call("exec", request, events, signal);
  }
  servicesUp(request: Requests["servicesUp"]) {
    return this.call("servicesUp", request);
  }
  servicesDown(request: Requests["servicesDown"]) {
    return this.call("servicesDown", request);
  }
  servicesList(request: Requests["servicesList"]) {
    return this.call("servicesList", request);
  }
  servicesEnv(request: Requests["servicesEnv"]) {
    return this.call("servicesEnv", request);
  }
  stateGet(request: Requests["stateGet"]) {
    return this.call("stateGet", request);
  }
  stateCheck(request: Requests["stateCheck"]) {
    return this.call("stateCheck", request);
  }
  async stateSet(request: Requests["stateSet"]) {
    await this.call("stateSet", request);
  }
  stateUnset(request: Requests["stateUnset"]) {
    return this.call("stateUnset", request);
  }
  secretsInit(request: Requests["secretsInit"]) {
    return this.call("secretsInit", request);
  }
  secretsRecipients(request: Requests["secretsRecipients"]) {
    return this.call("secretsRecipients", request);
  }
  gc(request: Requests["gc"]) {
    return this.call("gc", request);
  }
  servers(request: Requests["servers"]) {
    return this.call("servers", request);
  }
  retireServers(request: Requests["retireServers"]) {
    return this.call("retireServers", request);
  }
  tokenCreate(request: Requests["tokenCreate"]) {
    return this.call("tokenCreate", request);
  }
  tokenList(request: Requests["tokenList"]) {
    return this.call("tokenList", request);
  }
  tokenRevoke(request: Requests["tokenRevoke"]) {
    return this.call("tokenRevoke", request);
  }
  audit(request: Requests["audit"]) {
    return this.call("audit", request);
  }
}
