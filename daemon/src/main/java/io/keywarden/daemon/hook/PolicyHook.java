package io.keywarden.daemon.hook;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.policy.Workload;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;

/**
 * An optional OPA decision per gateway request and per issuance ({@code policyHook.opa}): POST
 * {@code {"input": {spiffe_id, workload, key, model, process: {pid, uid, exe}, action}}} to OPA's data
 * API and allow only on {@code {"result": true}}. An undefined result (OPA answers {@code {}}), a
 * non-boolean one, an HTTP error or no answer within {@code timeout} is an error: denied when
 * {@code failClosed} (the default), allowed otherwise. The hook only narrows: it is asked after
 * keywarden's own policy said yes. Nothing secret is sent.
 */
public final class PolicyHook {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final HttpClient client;
    private final HookSettings config;

    public PolicyHook(HttpClient client, HookSettings config) {
        this.client = client;
        this.config = config;
    }

    /** The hook's verdict: allowed or not, and why in words for the ledger. */
    public record Verdict(boolean allowed, String reason) {
    }

    public CompletionStage<Verdict> decide(Workload w, String key, String model, ProcessInfo p, String action) {
        ObjectNode input = JSON.createObjectNode();
        ObjectNode in = input.putObject("input");
        in.put("spiffe_id", w.spiffeId().toString()).put("workload", w.name()).put("key", key).put("action", action);
        if (model != null) {
            in.put("model", model);
        } else {
            in.putNull("model");
        }
        if (p != null) {
            ObjectNode proc = in.putObject("process");
            proc.put("pid", p.pid()).put("uid", Integer.toUnsignedLong(p.uid()));
            proc.put("exe", p.exe().orElse(null));
        } else {
            in.putNull("process");
        }
        CompletableFuture<Verdict> out = new CompletableFuture<>();
        long ms = Math.max(1, config.timeout().toMillis());
        Future<Verdict> f = client.request(new RequestOptions().setMethod(HttpMethod.POST)
                        .setAbsoluteURI(config.url().toString()).setTimeout(ms)
                        .putHeader("content-type", "application/json"))
                .compose(req -> req.send(Buffer.buffer(input.toString())))
                .compose(resp -> resp.body().map(body -> verdict(resp.statusCode(), body)));
        f.onComplete(ar -> out.complete(ar.succeeded() ? ar.result() : failed("no answer within " + ms + " ms or"
                + " unreachable (" + ar.cause().getClass().getSimpleName() + ")")));
        return out.orTimeout(ms + 50, TimeUnit.MILLISECONDS).exceptionally(e -> failed("no answer within " + ms + " ms"));
    }

    private Verdict verdict(int status, Buffer body) {
        if (status != 200) {
            return failed("OPA answered HTTP " + status);
        }
        JsonNode n;
        try {
            n = JSON.readTree(body.getBytes());
        } catch (java.io.IOException e) {
            return failed("OPA's answer is not JSON");
        }
        JsonNode r = n.get("result");
        if (r == null) {
            return failed("OPA's decision is undefined (no 'result'; is the policy loaded at " + config.url().getPath() + "?)");
        }
        if (!r.isBoolean()) {
            return failed("OPA's 'result' is not a boolean");
        }
        return r.asBoolean() ? new Verdict(true, "allowed by the policy hook")
                : new Verdict(false, "denied by the policy hook (OPA " + config.url().getPath() + ")");
    }

    private Verdict failed(String why) {
        return config.failClosed() ? new Verdict(false, "policy hook failed closed: " + why)
                : new Verdict(true, "policy hook failed open: " + why);
    }
}
