package org.sesa.opensearch.rest;

import org.opensearch.Version;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.core.action.ActionListener;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.core.xcontent.ToXContent;
import org.opensearch.core.xcontent.XContentBuilder;
import org.opensearch.rest.BaseRestHandler;
import org.opensearch.rest.BytesRestResponse;
import org.opensearch.rest.RestRequest;
import org.opensearch.transport.client.node.NodeClient;
import org.sesa.opensearch.inference.EndpointReport;
import org.sesa.opensearch.inference.InferenceClient;
import org.sesa.opensearch.util.PluginInfo;

import java.io.IOException;
import java.util.List;
import java.util.function.Supplier;

/**
 * {@code GET /_plugins/sesa/info}: what this node's plugin is and whether it can reach its inference
 * servers. Always answers 200 with a per-endpoint verdict, because its main use is diagnosing a setup
 * where the server is down or misconfigured. Probes run from the node that receives the request.
 */
public final class RestSesaInfoAction extends BaseRestHandler {

    public static final String PATH = "/_plugins/sesa/info";
    /** Health check plus Info must fit in this unless {@code ?timeout=} says otherwise. */
    public static final TimeValue DEFAULT_PROBE_TIMEOUT = TimeValue.timeValueSeconds(2);

    private final Supplier<InferenceClient> client;

    public RestSesaInfoAction(Supplier<InferenceClient> client) {
        this.client = client;
    }

    @Override
    public String getName() {
        return "sesa_info_action";
    }

    @Override
    public List<Route> routes() {
        return List.of(new Route(RestRequest.Method.GET, PATH));
    }

    @Override
    protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient nodeClient) throws IOException {
        TimeValue timeout = request.paramAsTime("timeout", DEFAULT_PROBE_TIMEOUT);
        if (timeout.millis() <= 0) {
            throw new IllegalArgumentException("[timeout] must be positive");
        }
        String nodeId = nodeClient.getLocalNodeId();
        InferenceClient inference = client.get();
        return channel -> inference.probeAll(timeout, new ActionListener<>() {
            @Override
            public void onResponse(List<EndpointReport> reports) {
                try {
                    XContentBuilder builder = channel.newBuilder();
                    render(builder, nodeId, inference, reports);
                    channel.sendResponse(new BytesRestResponse(RestStatus.OK, builder));
                } catch (Exception e) {
                    onFailure(e);
                }
            }

            @Override
            public void onFailure(Exception e) {
                try {
                    channel.sendResponse(new BytesRestResponse(channel, e));
                } catch (IOException inner) {
                    inner.addSuppressed(e);
                    channel.sendResponse(new BytesRestResponse(RestStatus.INTERNAL_SERVER_ERROR, "failed to build sesa info: " + inner));
                }
            }
        });
    }

    /** The response body; static so it can be tested without a REST layer. */
    public static XContentBuilder render(XContentBuilder builder, String nodeId, InferenceClient inference, List<EndpointReport> reports)
        throws IOException {
        builder.startObject();
        builder.startObject("plugin").field("name", PluginInfo.name()).field("version", PluginInfo.version()).endObject();
        builder.startObject("opensearch").field("version", Version.CURRENT.toString()).endObject();
        if (nodeId != null) {
            builder.field("node_id", nodeId);
        }
        builder.field("timeout", inference.defaultTimeout().getStringRep());
        builder.field("ingest_timeout", inference.ingestTimeout().getStringRep());
        builder.field("serving_endpoints", reports.stream().filter(r -> "SERVING".equals(r.health())).count());
        builder.startArray("endpoints");
        for (EndpointReport r : reports) {
            r.toXContent(builder, ToXContent.EMPTY_PARAMS);
        }
        builder.endArray();
        return builder.endObject();
    }
}
