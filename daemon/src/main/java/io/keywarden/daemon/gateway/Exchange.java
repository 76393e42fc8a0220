package io.keywarden.daemon.gateway;

import io.keywarden.attestation.Attestation;
import io.vertx.core.Context;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerRequest;

/** What a request has learned so far, as it moves through its stages. */
final class Exchange {
    final HttpServerRequest req;
    final Context ctx;
    /** The event loop's thread that serves this exchange's connection. */
    final Thread loop = Thread.currentThread();
    final String key;
    final GatewayServer.Via via;
    final Conn conn;
    String rest;
    Buffer body = Buffer.buffer();
    /** Body bytes this exchange holds against the gateway's memory bounds. */
    long held;
    Attestation.Identified who;
    String model;
    GatewaySettings.Upstream upstream;
    String leaseId;
    /** Hostile (a connection changing hands, a malformed request): closed once answered. */
    boolean closeAfter;
    io.keywarden.daemon.guard.Reservation reservation;
    long bodyBytes;
    /** The request reached the upstream (it may bill for it). */
    boolean sent;
    /** The agent asked for no usage chunk; the gateway asked for one on its behalf. */
    boolean dropUsageChunk;
    KeyRedactor redactor;
    io.vertx.core.http.HttpClientRequest upstreamRequest;
    boolean finished;

    Exchange(HttpServerRequest req, Context ctx, String key, String rest, GatewayServer.Via via, Conn conn) {
        this.req = req;
        this.ctx = ctx;
        this.key = key;
        this.rest = rest;
        this.via = via;
        this.conn = conn;
    }

    String workload() {
        return who == null ? "" : who.workload().name();
    }

    /** How the ledger names what was accessed. */
    String file() {
        return via == GatewayServer.Via.MTLS ? "gateway (mTLS)" : "gateway";
    }
}
