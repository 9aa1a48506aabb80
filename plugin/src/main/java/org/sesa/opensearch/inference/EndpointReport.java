package org.sesa.opensearch.inference;

import org.opensearch.core.xcontent.ToXContentObject;
import org.opensearch.core.xcontent.XContentBuilder;
import org.sesa.inference.v1.InfoResponse;
import org.sesa.inference.v1.ModelInfo;

import java.io.IOException;
import java.util.concurrent.TimeUnit;

/**
 * What one endpoint said to a health check and an Info call. "unreachable" is a normal answer, not an
 * error: the info action must describe a broken setup instead of failing with it.
 *
 * @param health              SERVING, NOT_SERVING, SERVICE_UNKNOWN, UNKNOWN (no health service) or {@link #UNREACHABLE}
 * @param reason              why the endpoint is unreachable, or null
 * @param healthNote          a remark on the health answer (e.g. no health service), or null
 * @param info                the Info answer, or null
 * @param infoError           why the Info call failed, or null
 * @param consecutiveFailures the client's count of calls that failed in a row on this endpoint
 */
public record EndpointReport(
    String endpoint,
    String health,
    String reason,
    String healthNote,
    InfoResponse info,
    String infoError,
    long tookMillis,
    int consecutiveFailures
) implements ToXContentObject {

    public static final String UNREACHABLE = "unreachable";

    public boolean reachable() {
        return UNREACHABLE.equals(health) == false;
    }

    @Override
    public XContentBuilder toXContent(XContentBuilder builder, Params params) throws IOException {
        builder.startObject();
        builder.field("endpoint", endpoint);
        builder.field("health", health);
        if (reason != null) {
            builder.field("reason", reason);
        }
        if (healthNote != null) {
            builder.field("health_note", healthNote);
        }
        builder.field("took_ms", tookMillis);
        builder.field("recent_call_failures", consecutiveFailures);
        if (infoError != null) {
            builder.field("info_error", infoError);
        }
        if (info != null) {
            builder.startObject("server");
            builder.field("server_version", info.getServerVersion());
            builder.field("device", info.getDevice());
            builder.array("providers", info.getProvidersList().toArray(new String[0]));
            builder.startArray("models");
            for (ModelInfo m : info.getModelsList()) {
                model(builder, m);
            }
            builder.endArray();
            if (info.hasConceptSpace()) {
                builder.startObject("concept_space");
                builder.field("name", info.getConceptSpace().getName());
                builder.field("size", info.getConceptSpace().getSize());
                builder.field("version", info.getConceptSpace().getVersion());
                builder.field("default_top_k", info.getConceptSpace().getDefaultTopK());
                builder.endObject();
            }
            if (info.hasLimits()) {
                var l = info.getLimits();
                builder.startObject("limits");
                builder.field("max_texts_per_call", l.getMaxTextsPerCall());
                builder.field("max_text_bytes", l.getMaxTextBytes());
                builder.field("max_batch_tokens", l.getMaxBatchTokens());
                builder.field("max_queue_size", l.getMaxQueueSize());
                builder.field("query_max_tokens", l.getQueryMaxTokens());
                builder.field("passage_max_tokens", l.getPassageMaxTokens());
                builder.endObject();
            }
            builder.endObject();
        }
        return builder.endObject();
    }

    private static void model(XContentBuilder builder, ModelInfo m) throws IOException {
        builder.startObject();
        builder.field("role", m.getRole());
        builder.field("id", m.getRef().getId());
        builder.field("version", m.getRef().getVersion());
        if (m.getDimension() > 0) {
            builder.field("dimension", m.getDimension());
        }
        builder.field("precision", m.getPrecision());
        builder.field("max_sequence_length", m.getMaxSequenceLength());
        builder.field("source", m.getSource());
        builder.endObject();
    }

    @Override
    public String toString() {
        return "EndpointReport[" + endpoint + " " + health + (reason == null ? "" : " (" + reason + ")") + "]";
    }

    /**
     * A probe of one endpoint under way: what the health check said so far; each way the probe can end makes the
     * report, with the time taken since the probe started.
     */
    static final class Probe {
        private final String endpoint;
        private final int consecutiveFailures;
        private final long startNanos = System.nanoTime();
        private String health;
        private String healthNote;

        Probe(String endpoint, int consecutiveFailures) {
            this.endpoint = endpoint;
            this.consecutiveFailures = consecutiveFailures;
        }

        /** The health check's answer, with a remark on it (or null). */
        void health(String status, String note) {
            this.health = status;
            this.healthNote = note;
        }

        /** The endpoint could not be reached (no channel, or the health check failed). */
        EndpointReport unreachable(String why) {
            return report(UNREACHABLE, why, null, null);
        }

        /** Info answered (after the health check). */
        EndpointReport answered(InfoResponse response) {
            return report(health, null, response, null);
        }

        /** Info failed (after the health check). */
        EndpointReport infoFailed(String error) {
            return report(health, null, null, error);
        }

        private EndpointReport report(String status, String why, InfoResponse response, String error) {
            long took = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);
            return new EndpointReport(endpoint, status, why, healthNote, response, error, took, consecutiveFailures);
        }
    }
}
