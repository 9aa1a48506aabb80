package org.sesa.opensearch.mapper;

import org.junit.jupiter.api.Test;
import org.opensearch.action.admin.indices.create.CreateIndexRequest;
import org.opensearch.action.admin.indices.mapping.put.PutMappingRequest;
import org.opensearch.action.admin.indices.template.put.PutComponentTemplateAction;
import org.opensearch.action.admin.indices.template.put.PutComposableIndexTemplateAction;
import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.metadata.ComponentTemplate;
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
        return index(name, knn, metaJson, Map.of("title", Map.of("type", "text")));
    }

    private static IndexMetadata index(String name, boolean knn, String metaJson, Map<String, Object> properties) {
        Map<String, Object> mapping = MappingFixtures.mapping(properties);
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

    /** {"window_tokens": 0, "overlap_tokens": 32, "max_windows": 64}: what the shipped pipeline chunks with. */
    private static final Map<String, Object> SHIPPED = Map.of("window_tokens", 0, "overlap_tokens", 32, "max_windows", 64);

    @SuppressWarnings("unchecked")
    private static Object chunkingOf(Map<String, Object> mapping, String field) {
        Map<String, Object> properties = MappingMaps.properties(mapping);
        return ((Map<String, Object>) properties.get(field)).get("chunking");
    }

    @Test
    void theDefaultIsTheShippedPipelinesOptionWithEveryKey() throws Exception {
        // one source: ../schemas/opensearch/ingest-pipeline.json names every key at the option's defaults (the Python
        // tooling reads the defaults from there)
        java.nio.file.Path shipped = java.nio.file.Path.of(System.getProperty("user.dir"), "..", "schemas", "opensearch", "ingest-pipeline.json");
        Map<String, Object> pipeline = json(java.nio.file.Files.readString(shipped));
        @SuppressWarnings("unchecked")
        Map<String, Object> encode = (Map<String, Object>) ((List<Map<String, Object>>) pipeline.get("processors")).get(0).get("sesa_encode");
        assertEquals(SesaTextRequestFilter.DEFAULT_CHUNKING, encode.get("chunking"));
        // and the concepts a document keeps: sesa_encode's default when unset, sesa_text fields' always
        assertEquals(org.sesa.opensearch.ingest.SesaEncodeProcessorFactory.DEFAULT_TOP_K_CONCEPTS, encode.get("top_k_concepts"));
    }

    @Test
    void aNewSesaTextFieldIsChunkedByDefaultAndTheDefaultIsWrittenIntoItsMapping() throws Exception {
        assertEquals(SHIPPED, SesaTextRequestFilter.DEFAULT_CHUNKING);
        CreateIndexRequest create = new CreateIndexRequest("docs").mapping(
            "{\"properties\": {\"body\": {\"type\": \"sesa_text\"}, \"title\": {\"type\": \"sesa_text\", \"chunking\": {\"max_windows\": 1}}}}"
        );
        SesaTextRequestFilter.onCreateIndex(create);
        Map<String, Object> mapping = json(create.mappings());
        assertEquals(SHIPPED, chunkingOf(mapping, "body"));
        assertEquals(Map.of("max_windows", 1), chunkingOf(mapping, "title"), "an explicit option is the user's");

        PutComposableIndexTemplateAction.Request put = new PutComposableIndexTemplateAction.Request("t");
        put.indexTemplate(new ComposableIndexTemplate(List.of("docs-*"), new Template(null, new CompressedXContent(SESA_TEXT), null), null, 5L, null, null));
        SesaTextRequestFilter.onPutTemplate(put);
        assertEquals(SHIPPED, chunkingOf(json(put.indexTemplate().template().mappings().string()), "body"));

        PutComponentTemplateAction.Request component = new PutComponentTemplateAction.Request("c");
        component.componentTemplate(new ComponentTemplate(new Template(null, new CompressedXContent(SESA_TEXT), null), 3L, null));
        SesaTextRequestFilter.onPutComponentTemplate(component);
        assertEquals(SHIPPED, chunkingOf(json(component.componentTemplate().template().mappings().string()), "body"));
        assertEquals(3L, component.componentTemplate().version());
    }

    @Test
    void aMappingUpdateGivesTheDefaultOnlyToNewFields() {
        // "body" was stored before the default (no chunking: whole text); repeating it must not change it
        SesaTextRequestFilter f = filter(index("docs", true, "{\"sesa\": {}}", Map.of("body", Map.of("type", "sesa_text"))));
        PutMappingRequest put = new PutMappingRequest("docs").source(
            json("{\"properties\": {\"body\": {\"type\": \"sesa_text\"}, \"summary\": {\"type\": \"sesa_text\"}}}")
        );
        f.onPutMapping(put);
        Map<String, Object> body = json(put.source());
        assertNull(chunkingOf(body, "body"), "a stored field keeps what its mapping says");
        assertEquals(SHIPPED, chunkingOf(body, "summary"), "a new field gets the default");
        assertEquals(json("{\"sesa\": {}}"), body.get("_meta"), "the index's _meta is still carried");
    }
}
