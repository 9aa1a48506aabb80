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
 */
public final class EndpointReport implements ToXContentObject {

    public static final String UNREACHABLE = "unreachable";

    private final String endpoint;
    private final String health;
    private final String reason;
    private final String healthNote;
    private final InfoResponse info;
    private final String infoError;
    private final long tookMillis;
    private final int consecutiveFailures;

    private EndpointReport(Builder b) {
        this.endpoint = b.endpoint;
        this.health = b.health;
        this.reason = b.reason;
        this.healthNote = b.healthNote;
        this.info = b.info;
        this.infoError = b.infoError;
        this.tookMillis = b.tookMillis;
        this.consecutiveFailures = b.consecutiveFailures;
    }

    public String endpoint() {
        return endpoint;
    }

    /** SERVING, NOT_SERVING, SERVICE_UNKNOWN, UNKNOWN (no health service) or {@link #UNREACHABLE}. */
    public String health() {
        return health;
    }

    public String reason() {
        return reason;
    }

    public InfoResponse info() {
        return info;
    }

    public String infoError() {
        return infoError;
    }

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

    @Override
    public String toString() {
        return "EndpointReport[" + endpoint + " " + health + (reason == null ? "" : " (" + reason + ")") + "]";
    }

    static final class Builder {
        private final String endpoint;
        private String health;
        private String reason;
        private String healthNote;
        private InfoResponse info;
        private String infoError;
        private long tookMillis;
        private int consecutiveFailures;

        Builder(String endpoint) {
            this.endpoint = endpoint;
        }

        Builder health(String health) {
            this.health = health;
            return this;
        }

        Builder healthNote(String note) {
            this.healthNote = note;
            return this;
        }

        Builder unreachable(String reason) {
            this.health = UNREACHABLE;
            this.reason = reason;
            return this;
        }

        Builder info(InfoResponse info) {
            this.info = info;
            return this;
        }

        Builder infoError(String error) {
            this.infoError = error;
            return this;
        }

        Builder consecutiveFailures(int n) {
            this.consecutiveFailures = n;
            return this;
        }

        Builder took(long startNanos) {
            this.tookMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);
            return this;
        }

        EndpointReport build() {
            return new EndpointReport(this);
        }
    }
}
