package org.sesa.opensearch.index;

import org.junit.jupiter.api.Test;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.metadata.IndexNameExpressionResolver;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.util.concurrent.ThreadContext;

import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.sesa.opensearch.index.MappingFixtures.index;
import static org.sesa.opensearch.index.MappingFixtures.sesaTemplateMapping;
import static org.sesa.opensearch.index.MappingFixtures.state;

class TargetChunkFieldsTests {

    private final AtomicReference<ClusterState> cluster = new AtomicReference<>();
    private final TargetChunkFields lookup = new TargetChunkFields(
        cluster::get,
        () -> new IndexNameExpressionResolver(new ThreadContext(Settings.EMPTY))
    );

    private static SearchRequest search(String... indices) {
        return new SearchRequest(indices);
    }

    @Test
    void indicesThatMapChunksAreFound() {
        Map<String, Object> plain = Map.of("properties", MappingFixtures.sesaProperties("sesa", 384));
        cluster.set(state(1, List.of(index("sesa-chunked", sesaTemplateMapping(384)), index("plain", plain))));
        assertTrue(lookup.mapsChunks(search("sesa-chunked"), "sesa_chunks"));
        assertFalse(lookup.mapsChunks(search("plain"), "sesa_chunks"));
        assertTrue(lookup.mapsChunks(search("plain", "sesa-chunked"), "sesa_chunks"), "one index with chunks is enough");
        assertTrue(lookup.mapsChunks(search("sesa-*"), "sesa_chunks"), "wildcards are expanded");
        assertFalse(lookup.mapsChunks(search("sesa-chunked"), "other_chunks"));
        assertFalse(lookup.mapsChunks(search("missing"), "sesa_chunks"), "a missing index is the search's to report");
        assertFalse(lookup.mapsChunks(search("remote:sesa-chunked"), "sesa_chunks"), "remote indices are not known here");
    }

    @Test
    void anObjectIsNotChunksAndNothingIsKnownWithoutAState() {
        assertFalse(lookup.mapsChunks(search("x"), "sesa_chunks"));
        Map<String, Object> object = Map.of("properties", Map.of("sesa_chunks", Map.of("properties", Map.of("start", Map.of("type", "integer")))));
        cluster.set(state(1, List.of(index("object", object))));
        assertFalse(lookup.mapsChunks(search("object"), "sesa_chunks"));
    }
}
