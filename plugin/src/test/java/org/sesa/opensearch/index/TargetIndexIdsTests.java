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

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.sesa.opensearch.index.MappingFixtures.index;
import static org.sesa.opensearch.index.MappingFixtures.state;

/** The key a cache of statistics about a search's indices is kept under: their UUIDs, or nothing to key. */
class TargetIndexIdsTests {

    private final AtomicReference<ClusterState> cluster = new AtomicReference<>();
    private final TargetIndexIds ids = new TargetIndexIds(cluster::get, () -> new IndexNameExpressionResolver(new ThreadContext(Settings.EMPTY)));

    @Test
    void concreteIndicesByUuidSorted() {
        assertNull(ids.apply(new SearchRequest("a")), "no cluster state yet");
        cluster.set(state(1, List.of(index("b", Map.of()), index("a", Map.of()))));
        assertEquals("a-uuid", ids.apply(new SearchRequest("a")));
        assertEquals("a-uuid,b-uuid", ids.apply(new SearchRequest("b", "a")));
        assertEquals("a-uuid,b-uuid", ids.apply(new SearchRequest("*")), "wildcards are expanded");
        assertEquals("a-uuid", ids.apply(new SearchRequest("a", "missing")), "a missing index is the search's to report");
        assertNull(ids.apply(new SearchRequest("missing")), "nothing to key");
        assertNull(ids.apply(new SearchRequest("a", "remote:a")), "a remote index's statistics are not this node's");
    }
}
