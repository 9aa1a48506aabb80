package org.sesa.opensearch.mapper;

import org.junit.jupiter.api.Test;
import org.opensearch.action.admin.indices.create.CreateIndexRequest;
import org.opensearch.action.admin.indices.mapping.put.PutMappingRequest;
import org.opensearch.action.admin.indices.template.put.PutComposableIndexTemplateAction;
import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.metadata.ComposableIndexTemplate;
import org.opensearch.cluster.metadata.IndexMetadata;
import org.opensearch.cluster.metadata.IndexNameExpressionResolver;
import org.opensearch.cluster.metadata.Template;
import org.opensearch.common.compress.CompressedXContent;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.util.concurrent.ThreadContext;
import org.opensearch.Version;
import org.sesa.opensearch.index.MappingFixtures;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.sesa.opensearch.index.MappingFixtures.json;

/** What the request filter does for sesa_text mappings: index.knn for new indices and templates, _meta kept on updates. */
class SesaTextRequestFilterTests {

    private static final String SESA_TEXT = "{\"properties\": {\"body\": {\"type\": \"sesa_text\"}}}";

    private static IndexMetadata index(String name, boolean knn, String metaJson) {
        Map<String, Object> mapping = MappingFixtures.mapping(Map.of("title", Map.of("type", "text")));
        if (metaJson != null) {
            mapping.put("_meta", json(metaJson));
        }
        return IndexMetadata.builder(name)
            .settings(
                Settings.builder()
                    .put(IndexMetadata.SETTING_VERSION_CREATED, Version.CURRENT)
                    .put(IndexMetadata.SETTING_INDEX_UUID, name + "-uuid")
                    .put("index.knn", knn)
            )
            .numberOfShards(1)
            .numberOfReplicas(0)
            .putMapping(new org.opensearch.cluster.metadata.MappingMetadata("_doc", mapping))
            .build();
    }

    private static SesaTextRequestFilter filter(IndexMetadata... indices) {
        ClusterState cs = MappingFixtures.state(1, List.of(indices));
        IndexNameExpressionResolver resolver = new IndexNameExpressionResolver(new ThreadContext(Settings.EMPTY));
        return new SesaTextRequestFilter(() -> cs, () -> resolver);
    }

    @Test
    void aNewIndexWithASesaTextFieldGetsIndexKnn() {
        CreateIndexRequest create = new CreateIndexRequest("docs").mapping(SESA_TEXT);
        SesaTextRequestFilter.onCreateIndex(create);
        assertEquals("true", create.settings().get("index.knn"));
        assertEquals("false", create.settings().get("index.knn.derived_source.enabled"),
            "derived source off, as in the sesa-* template (k-NN 3.5 fetches fail after a merge otherwise)");

        CreateIndexRequest derivedOn = new CreateIndexRequest("docs", Settings.builder().put("index.knn.derived_source.enabled", true).build())
            .mapping(SESA_TEXT);
        SesaTextRequestFilter.onCreateIndex(derivedOn);
        assertEquals("true", derivedOn.settings().get("index.knn.derived_source.enabled"), "an explicit setting is the user's");
        assertEquals("true", derivedOn.settings().get("index.knn"));

        CreateIndexRequest plain = new CreateIndexRequest("docs").mapping("{\"properties\": {\"t\": {\"type\": \"text\"}}}");
        SesaTextRequestFilter.onCreateIndex(plain);
        assertNull(plain.settings().get("index.knn"), "no sesa_text field: untouched");

        CreateIndexRequest off = new CreateIndexRequest("docs", Settings.builder().put("index.knn", false).build()).mapping(SESA_TEXT);
        SesaTextRequestFilter.onCreateIndex(off);
        assertEquals("false", off.settings().get("index.knn"), "an explicit setting is the user's");

        CreateIndexRequest none = new CreateIndexRequest("docs");
        SesaTextRequestFilter.onCreateIndex(none);
        assertNull(none.settings().get("index.knn"));
    }

    @Test
    void aComposableTemplateWithASesaTextFieldGetsIndexKnn() throws Exception {
        PutComposableIndexTemplateAction.Request put = new PutComposableIndexTemplateAction.Request("t");
        put.indexTemplate(new ComposableIndexTemplate(List.of("docs-*"), new Template(null, new CompressedXContent(SESA_TEXT), null), null, 5L, null, null));
        SesaTextRequestFilter.onPutTemplate(put);
        assertEquals("true", put.indexTemplate().template().settings().get("index.knn"));
        assertEquals(List.of("docs-*"), put.indexTemplate().indexPatterns());
        assertEquals(5L, put.indexTemplate().priority());
    }

    @Test
    void aMappingUpdateKeepsTheIndexMeta() {
        SesaTextRequestFilter f = filter(index("docs", true, "{\"sesa\": {\"models\": {\"sesa\": {\"dense\": \"m@1\"}}, \"evidence\": {}}}"));
        PutMappingRequest put = new PutMappingRequest("docs").source(json(SESA_TEXT));
        f.onPutMapping(put);
        Map<String, Object> body = json(put.source());
        assertEquals(json("{\"sesa\": {\"models\": {\"sesa\": {\"dense\": \"m@1\"}}, \"evidence\": {}}}"), body.get("_meta"));
        assertTrue(body.containsKey("properties"));

        PutMappingRequest own = new PutMappingRequest("docs").source(json("{\"_meta\": {\"mine\": 1}, \"properties\": {\"body\": {\"type\": \"sesa_text\"}}}"));
        f.onPutMapping(own);
        assertEquals(Map.of("mine", 1), json(own.source()).get("_meta"), "the request's own _meta is what the user asked for");

        PutMappingRequest plain = new PutMappingRequest("docs").source(json("{\"properties\": {\"t\": {\"type\": \"keyword\"}}}"));
        f.onPutMapping(plain);
        assertFalse(json(plain.source()).containsKey("_meta"), "no sesa_text field: untouched");
    }

    @Test
    void aMappingUpdateIsRefusedWhereItCannotWork() {
        SesaTextRequestFilter f = filter(index("no-knn", false, null), index("a", true, "{\"x\": 1}"), index("b", true, "{\"x\": 2}"));
        IllegalArgumentException knn = assertThrows(
            IllegalArgumentException.class,
            () -> f.onPutMapping(new PutMappingRequest("no-knn").source(json(SESA_TEXT)))
        );
        assertTrue(knn.getMessage().contains("sesa_text field [body] needs index.knn: true, which index [no-knn] does not have"), knn.getMessage());

        IllegalArgumentException differ = assertThrows(IllegalArgumentException.class, () -> f.onPutMapping(new PutMappingRequest("a", "b").source(json(SESA_TEXT))));
        assertTrue(differ.getMessage().contains("put the mapping to one index at a time"), differ.getMessage());
    }
}
