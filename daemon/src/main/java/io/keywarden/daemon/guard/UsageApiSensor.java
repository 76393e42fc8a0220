package io.keywarden.daemon.guard;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.daemon.lifecycle.LeaseManager;
import io.keywarden.policy.Policy;
import io.keywarden.policy.Workload;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The usage-API sensor for file mode: polls OpenAI's organization usage API
 * ({@code /organization/usage/completions}, 1-minute buckets grouped by {@code api_key_id} and
 * {@code model}) with an admin key read from a file at each poll, attributes each bucket to the
 * workload whose lease holds that {@code api_key_id} (the lease's {@code provider_key_id}), and feeds
 * the guard what is new since the last poll, minus what the gateway already counted for that lease
 * and minute.
 *
 * <p>Late by design: the API reports a bucket minutes after the fact, so each poll looks back
 * {@link #LOOKBACK} and counts growth in buckets it has seen before; a breach found this way fires
 * that much later than one the gateway sees in line. Keys the lease core no longer holds stay
 * attributable for {@link #REMEMBER} after they were last seen. The admin key never leaves this
 * class: not logged, not in an error message.
 */
public final class UsageApiSensor {
    private static final Logger LOG = LoggerFactory.getLogger(UsageApiSensor.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    static final Duration LOOKBACK = Duration.ofMinutes(60);
    static final Duration REMEMBER = Duration.ofHours(24);
    private static final int MAX_PAGES = 20;

    private final UsageApiSettings config;
    private final GuardEngine guard;
    private final Supplier<List<LeaseManager.LeaseView>> leases;
    private final Supplier<Policy> policy;
    private final GatewayTally tally;
    private final Clock clock;
    private final io.keywarden.daemon.ops.TokenMetrics metrics;
    private final HttpClient http;
    /** api_key_id → who held it and when that was last seen. */
    private final Map<String, Owner> owners = new HashMap<>();
    /** (bucket start, api_key_id) → {in, out, requests} already fed to the guard. */
    private final Map<String, long[]> counted = new HashMap<>();
    private volatile String lastError;

    private record Owner(String workload, String key, String leaseId, Instant seen) {
    }

    /** With a fleet: where each slot is counted once for every node (else this node's {@link #counted}). */
    private final SlotCounter fleet;
    /** Why the fleet did not count a slot in this poll (readiness shows it). */
    private String fleetProblem;

    public UsageApiSensor(UsageApiSettings config, GuardEngine guard, Supplier<List<LeaseManager.LeaseView>> leases,
                          Supplier<Policy> policy, GatewayTally tally, io.keywarden.daemon.ops.TokenMetrics metrics,
                          Clock clock) {
        this(config, guard, leases, policy, tally, metrics, clock, null);
    }

    public UsageApiSensor(UsageApiSettings config, GuardEngine guard, Supplier<List<LeaseManager.LeaseView>> leases,
                          Supplier<Policy> policy, GatewayTally tally, io.keywarden.daemon.ops.TokenMetrics metrics,
                          Clock clock, SlotCounter fleet) {
        this.fleet = fleet;
        this.metrics = metrics;
        this.config = config;
        this.guard = guard;
        this.leases = leases;
        this.policy = policy;
        this.tally = tally;
        this.clock = clock;
        this.http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    }

    /** Why the last poll failed, or empty (readiness shows it; the daemon keeps serving). */
    public Optional<String> lastError() {
        return Optional.ofNullable(lastError);
    }

    /** One poll; called by the scheduler every {@code interval}. Never throws. */
    public synchronized void poll() {
        Instant now = clock.instant();
        for (LeaseManager.LeaseView v : leases.get()) {
            if (v.providerKeyId() != null) {
                owners.put(v.providerKeyId(), new Owner(v.workload(), v.key(), v.leaseId(), now));
            }
        }
        owners.values().removeIf(o -> o.seen().isBefore(now.minus(REMEMBER)));
        if (owners.isEmpty()) {
            lastError = null;
            return;
        }
        Instant start = Instant.ofEpochSecond(now.minus(LOOKBACK).getEpochSecond() / 60 * 60);
        try {
            Map<String, Bucket> buckets = fetch(start);
            fleetProblem = null;
            for (Map.Entry<String, Bucket> e : buckets.entrySet()) {
                apply(e.getKey(), e.getValue());
            }
            counted.keySet().removeIf(k -> Long.parseLong(k.substring(0, k.indexOf('/'))) < start.getEpochSecond());
            tally.dropBefore(start);
            lastError = fleetProblem;
        } catch (IOException e) {
            lastError = "usage API: " + e.getMessage();
            LOG.warn("{}", lastError);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** One bucket of one key: totals over its models, and the model with the most tokens. */
    private static final class Bucket {
        final Instant start;
        final String apiKeyId;
        long in;
        long out;
        long requests;
        final Map<String, Long> tokensByModel = new HashMap<>();

        Bucket(Instant start, String apiKeyId) {
            this.start = start;
            this.apiKeyId = apiKeyId;
        }

        String model() {
            return tokensByModel.entrySet().stream().max(Map.Entry.comparingByValue()).map(Map.Entry::getKey).orElse(null);
        }
    }

    private Map<String, Bucket> fetch(Instant start) throws IOException, InterruptedException {
        byte[] key = Files.readAllBytes(config.adminKeyFile());
        Map<String, Bucket> out = new HashMap<>();
        try {
            String auth = "Bearer " + new String(key, StandardCharsets.US_ASCII).trim();
            String page = null;
            for (int n = 0; n < MAX_PAGES; n++) {
                String base = config.url().toString().replaceAll("/+$", "");
                String q = "start_time=" + start.getEpochSecond() + "&bucket_width=1m&group_by[]=api_key_id"
                        + "&group_by[]=model&limit=" + (LOOKBACK.toMinutes() + 1)
                        + (page == null ? "" : "&page=" + java.net.URLEncoder.encode(page, StandardCharsets.UTF_8));
                HttpRequest req = HttpRequest.newBuilder(URI.create(base + "/organization/usage/completions?"
                        + q.replace("[", "%5B").replace("]", "%5D"))).timeout(Duration.ofSeconds(30))
                        .header("Authorization", auth).GET().build();
                HttpResponse<byte[]> resp = http.send(req, HttpResponse.BodyHandlers.ofByteArray());
                if (resp.statusCode() != 200) {
                    throw new IOException("GET " + config.url().getHost() + "/organization/usage/completions answered HTTP "
                            + resp.statusCode() + describe(resp.body()));
                }
                JsonNode root;
                try {
                    root = JSON.readTree(resp.body());
                } catch (IOException e) {
                    throw new IOException("the usage API's answer is not JSON");
                }
                if (!root.path("data").isArray()) {
                    throw new IOException("the usage API's answer has no 'data' list");
                }
                for (JsonNode b : root.get("data")) {
                    Instant bs = Instant.ofEpochSecond(b.path("start_time").asLong());
                    for (JsonNode r : b.path("results")) {
                        String id = r.path("api_key_id").asText(null);
                        if (id == null || !owners.containsKey(id)) {
                            continue;
                        }
                        Bucket k = out.computeIfAbsent(bs.getEpochSecond() + "/" + id, x -> new Bucket(bs, id));
                        long in = Math.max(0, r.path("input_tokens").asLong(0));
                        long o = Math.max(0, r.path("output_tokens").asLong(0));
                        k.in += in;
                        k.out += o;
                        k.requests += Math.max(0, r.path("num_model_requests").asLong(0));
                        String model = r.path("model").asText(null);
                        if (model != null) {
                            k.tokensByModel.merge(model, in + o, Long::sum);
                        }
                    }
                }
                if (!root.path("has_more").asBoolean(false) || !root.path("next_page").isTextual()) {
                    break;
                }
                page = root.get("next_page").asText();
            }
        } finally {
            java.util.Arrays.fill(key, (byte) 0);
        }
        return out;
    }

    private static String describe(byte[] body) {
        try {
            String m = JSON.readTree(body).path("error").path("message").asText("");
            return m.isEmpty() ? "" : ": " + (m.length() > 200 ? m.substring(0, 200) : m);
        } catch (IOException e) {
            return "";
        }
    }

    private void apply(String slot, Bucket b) {
        Owner o = owners.get(b.apiKeyId);
        Optional<Workload> w = policy.get().workload(o.workload());
        if (w.isEmpty()) {
            return;
        }
        long[] gw = tally.get(o.leaseId(), b.start);
        long in = Math.max(0, b.in - gw[0]);
        long out = Math.max(0, b.out - gw[1]);
        long req = Math.max(0, b.requests - gw[2]);
        if (fleet != null) {
            countInFleet(w.get(), o, b, slot, in, out, req);
            return;
        }
        long[] before = counted.getOrDefault(slot, new long[3]);
        long dIn = Math.max(0, in - before[0]);
        long dOut = Math.max(0, out - before[1]);
        long dReq = Math.max(0, req - before[2]);
        counted.put(slot, new long[] {Math.max(in, before[0]), Math.max(out, before[1]), Math.max(req, before[2])});
        if (dIn + dOut + dReq > 0) {
            metrics.tokens(w.get().name(), o.key(), b.model(), dIn, dOut);
            guard.record(w.get(), b.model(), dIn, dOut, dReq, "usage-api");
        }
    }

    /**
     * The slot's totals to the fleet, which counts what grew since any node reported them (a key
     * seen by two nodes, or a node restarted within the look-back, is not counted twice); this node
     * records what was counted now. When the fleet does not answer, nothing is counted: the next
     * poll reports the slot again.
     */
    private void countInFleet(Workload w, Owner o, Bucket b, String slot, long in, long out, long req) {
        try {
            long[] d = fleet.count(w, slot, in, out, req, "usage-api").toCompletableFuture().get(30,
                    java.util.concurrent.TimeUnit.SECONDS);
            if (d[0] + d[1] + d[2] > 0) {
                metrics.tokens(w.name(), o.key(), b.model(), d[0], d[1]);
                guard.record(w, b.model(), d[0], d[1], d[2], "usage-api");
            }
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            fleetProblem = "usage API: the fleet did not count the usage of " + w.name() + " (" + (e.getCause() == null ? e
                    : e.getCause()) + "); reported again at the next poll";
            LOG.warn("{}", fleetProblem);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
