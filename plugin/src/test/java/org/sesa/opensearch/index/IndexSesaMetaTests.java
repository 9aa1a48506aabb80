package org.sesa.opensearch.index;

import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.Property;
import org.junit.jupiter.api.Test;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.metadata.AliasMetadata;
import org.opensearch.cluster.metadata.IndexMetadata;
import org.sesa.opensearch.search.Branch;
import org.sesa.opensearch.search.fusion.FusionTechnique;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.sesa.opensearch.index.IndexMetaFixtures.RECORD;
import static org.sesa.opensearch.index.IndexMetaFixtures.evidenceMeta;
import static org.sesa.opensearch.index.IndexMetaFixtures.index;
import static org.sesa.opensearch.index.IndexMetaFixtures.modelsMeta;
import static org.sesa.opensearch.index.IndexMetaFixtures.state;

class IndexSesaMetaTests {

    static IndexSesaMeta reader(ClusterState state) {
        return new IndexSesaMeta(() -> state);
    }

    @Test
    void aRecordIsFoundAndRead() {
        IndexSesaMeta meta = reader(state(index("idx", evidenceMeta("sesa", RECORD))));
        IndexEvidence e = meta.evidence("idx", "sesa");
        assertNull(e.invalid());
        EvidenceRecord r = e.record();
        assertEquals(FusionTechnique.MIN_MAX, r.technique());
        assertEquals(Map.of(Branch.BM25, 0.45, Branch.DENSE, 0.45, Branch.CONCEPTS, 0.1), r.weights());
        assertEquals(60, r.rankConstant());
        assertEquals(Boolean.TRUE, r.rerankEnabled());
        assertEquals(0.7, r.rerankWeight());
        @SuppressWarnings("unchecked")
        Map<String, Object> measured = (Map<String, Object>) r.measured();
        assertEquals("scifact", measured.get("dataset"), "measured is passed through as it is");
        assertEquals(Map.of("gain", 0.021, "p", 0.003), measured.get("ndcg@10"));
        assertSame(e, meta.evidence("idx", "sesa"), "parsed once per index version");
    }

    @Test
    void withoutARecordThereIsNone() {
        IndexSesaMeta meta = reader(
            state(
                index("plain", null),
                index("other-meta", "{\"owner\": \"x\"}"),
                index("models-only", "{\"sesa\": {\"models\": {\"sesa\": {\"dense\": \"m@1\"}}}}"),
                index("idx", evidenceMeta("sesa", RECORD))
            )
        );
        for (String index : List.of("plain", "other-meta", "models-only", "unknown", "remote:idx")) {
            assertSame(IndexEvidence.ABSENT, meta.evidence(index, "sesa"), index);
        }
        assertSame(IndexEvidence.ABSENT, meta.evidence("idx", "other_prefix"), "a record is per target prefix");
        assertSame(IndexEvidence.ABSENT, meta.evidence(null, "sesa"));
        assertSame(IndexEvidence.ABSENT, reader(null).evidence("idx", "sesa"), "no cluster state yet");
    }

    @Test
    void partialRecordsAndNullsSayNothingOnWhatTheyLeaveOut() {
        IndexSesaMeta meta = reader(
            state(
                index("rerank-only", evidenceMeta("sesa", "{\"version\": 1, \"rerank\": {\"enabled\": false}, \"extra\": 1}")),
                index("nulls", evidenceMeta("sesa", "{\"version\": 1, \"fusion\": {\"technique\": null, \"weights\": {\"dense\": 2}, \"rank_constant\": null}, \"rerank\": {\"enabled\": true, \"weight\": null}, \"measured\": null}")),
                index("z", evidenceMeta("sesa", "{\"version\": 1, \"fusion\": {\"technique\": \"z_score\"}}"))
            )
        );
        assertEquals(FusionTechnique.Z_SCORE, meta.evidence("z", "sesa").record().technique());
        EvidenceRecord r = meta.evidence("rerank-only", "sesa").record();
        assertNull(r.technique());
        assertNull(r.weights());
        assertNull(r.rankConstant());
        assertEquals(Boolean.FALSE, r.rerankEnabled());
        assertNull(r.measured());
        EvidenceRecord n = meta.evidence("nulls", "sesa").record();
        assertNull(n.technique());
        assertEquals(Map.of(Branch.BM25, 0.0, Branch.DENSE, 2.0, Branch.CONCEPTS, 0.0), n.weights(), "a branch left out weighs 0");
        assertNull(n.rankConstant());
        assertEquals(Boolean.TRUE, n.rerankEnabled());
        assertNull(n.rerankWeight());
    }

    @Test
    void aMalformedRecordIsInvalidWithItsReasonAndOneWarningPerMappingVersion() {
        Map<String, String> bad = new java.util.LinkedHashMap<>();
        bad.put("{\"fusion\": {}}", "[version] must be 1");
        bad.put("{\"version\": 2}", "[version] must be 1, got [2]");
        bad.put("[1, 2]", "the record must be an object");
        bad.put("{\"version\": 1, \"fusion\": \"rrf\"}", "[fusion] must be an object");
        bad.put("{\"version\": 1, \"fusion\": {\"technique\": \"sum\"}}", "[fusion.technique] must be one of [min_max, z_score, rrf], got [sum]");
        bad.put("{\"version\": 1, \"fusion\": {\"technique\": 3}}", "[fusion.technique] must be a string");
        bad.put("{\"version\": 1, \"fusion\": {\"weights\": {\"bm25\": -0.5, \"dense\": 1}}}", "[fusion.weights.bm25] must be a finite number >= 0");
        bad.put("{\"version\": 1, \"fusion\": {\"weights\": {\"bm25\": 0, \"dense\": 0, \"concepts\": 0}}}", "[fusion.weights] must have at least one weight > 0");
        bad.put("{\"version\": 1, \"fusion\": {\"weights\": {\"sparse\": 1}}}", "[fusion.weights] has unknown branch [sparse]");
        bad.put("{\"version\": 1, \"fusion\": {\"weights\": {\"bm25\": \"1\"}}}", "[fusion.weights.bm25] must be a number");
        bad.put("{\"version\": 1, \"fusion\": {\"weights\": [1, 1, 0]}}", "[fusion.weights] must be an object");
        bad.put("{\"version\": 1, \"fusion\": {\"rank_constant\": 0}}", "[fusion.rank_constant] must be between 1 and 10000");
        bad.put("{\"version\": 1, \"fusion\": {\"rank_constant\": 1.5}}", "[fusion.rank_constant] must be an integer");
        bad.put("{\"version\": 1, \"fusion\": {\"weight\": {\"bm25\": 1}}}", "[fusion] has unknown key [weight]");
        bad.put("{\"version\": 1, \"rerank\": {\"weight\": 0.5}}", "[rerank.enabled] must be true or false, got [null]");
        bad.put("{\"version\": 1, \"rerank\": {\"enabled\": \"yes\"}}", "[rerank.enabled] must be true or false");
        bad.put("{\"version\": 1, \"rerank\": {\"enabled\": true, \"weight\": 1.5}}", "[rerank.weight] must be a number between 0 and 1");
        bad.put("{\"version\": 1, \"rerank\": true}", "[rerank] must be an object");
        List<String> warnings = warningsDuring(() -> {
            int i = 0;
            for (Map.Entry<String, String> c : bad.entrySet()) {
                String name = "bad-" + i++;
                IndexSesaMeta meta = reader(state(index(name, evidenceMeta("sesa", c.getKey()))));
                IndexEvidence e = meta.evidence(name, "sesa");
                assertNull(e.record(), c.getKey());
                assertNotNull(e.invalid(), c.getKey());
                assertTrue(e.invalid().startsWith("[_meta.sesa.evidence.sesa] "), e.invalid());
                assertTrue(e.invalid().contains(c.getValue()), c.getKey() + " -> " + e.invalid());
                assertSame(e, meta.evidence(name, "sesa"));
            }
        });
        assertEquals(bad.size(), warnings.size(), "one warning per index version, not per search: " + warnings);
        assertTrue(warnings.get(0).startsWith("ignoring the evidence record of index [bad-0] (mapping version 1)"), warnings.get(0));

        // not an object of records: every prefix of that index is invalid
        IndexSesaMeta meta = reader(state(index("flat", "{\"sesa\": {\"evidence\": [1]}}")));
        assertTrue(meta.evidence("flat", "sesa").invalid().contains("must be an object of records per target prefix"));
        assertTrue(meta.evidence("flat", "other").invalid() != null);
        // a bad record for one prefix leaves the others alone
        IndexSesaMeta two = reader(state(index("two", "{\"sesa\": {\"evidence\": {\"a\": {\"version\": 9}, \"b\": " + RECORD + "}}}")));
        assertNotNull(two.evidence("two", "a").invalid());
        assertNotNull(two.evidence("two", "b").record());
    }

    @Test
    void aNewMappingVersionIsReadAgain() {
        AtomicReference<ClusterState> current = new AtomicReference<>(state(index("idx", 1, evidenceMeta("sesa", "{\"version\": 1, \"rerank\": {\"enabled\": false}}"), null)));
        IndexSesaMeta meta = new IndexSesaMeta(current::get);
        assertEquals(Boolean.FALSE, meta.evidence("idx", "sesa").record().rerankEnabled());
        // sesa tune wrote a new record: a new mapping version
        current.set(state(index("idx", 2, evidenceMeta("sesa", RECORD), null)));
        assertEquals(Boolean.TRUE, meta.evidence("idx", "sesa").record().rerankEnabled());
    }

    @Test
    void modelsAreReadFromTheWriteIndexAsIngestDidBefore() {
        String models = "{\"sesa\": {\"models\": {\"sesa\": {\"dense\": \"enc@1\", \"concepts\": \"esco@2\"}, \"other\": \"enc@1\"}, \"evidence\": {\"sesa\": "
            + RECORD
            + "}}}";
        IndexSesaMeta meta = reader(state(index("idx-1", 3, models, "docs"), index("bare", null)));
        assertEquals(Map.of("dense", "enc@1", "concepts", "esco@2"), meta.models("idx-1", "sesa"));
        assertEquals(Map.of("dense", "enc@1", "concepts", "esco@2"), meta.models("docs", "sesa"), "through the write alias");
        assertEquals("enc@1", meta.models("docs", "other"), "a string names the dense model");
        assertNull(meta.models("docs", "nope"));
        assertNull(meta.models("bare", "sesa"), "no mapping");
        assertNull(meta.models("not-created-yet", "sesa"), "auto-created later: nothing recorded");
        assertNull(meta.models(null, "sesa"));
        assertNull(reader(null).models("idx-1", "sesa"));
        assertNotNull(meta.evidence("idx-1", "sesa").record(), "the same cached section serves both");
    }

    @Test
    void chunkingIsReadFromTheWriteIndexBesideTheModels() {
        String meta = "{\"sesa\": {\"models\": {\"sesa\": \"enc@1\"}, \"chunking\": {\"sesa\": {\"window_tokens\": 0, \"overlap_tokens\": 32}, "
            + "\"plain\": \"off\"}}}";
        IndexSesaMeta reader = reader(state(index("idx-1", 2, meta, "docs"), index("bare", null)));
        assertEquals(Map.of("window_tokens", 0, "overlap_tokens", 32), reader.expectedChunking("docs", "sesa"), "through the write alias");
        assertEquals("off", reader.expectedChunking("idx-1", "plain"));
        assertEquals("enc@1", reader.expectedModels("idx-1", "sesa"), "the ingest lookup answers models as models() does");
        assertNull(reader.expectedChunking("idx-1", "nope"));
        assertNull(reader.expectedChunking("bare", "sesa"), "no record: nothing is checked");
        assertNull(reader.expectedChunking("not-created-yet", "sesa"));
        assertNull(reader(null).expectedChunking("idx-1", "sesa"));
    }

    @Test
    void anIndexNotCreatedYetIsHeldToTheChunkingItsTemplateRecords() {
        Map<String, Object> templateMapping = new java.util.LinkedHashMap<>(MappingFixtures.mapping(Map.of()));
        templateMapping.put("_meta", Map.of("sesa", Map.of("chunking", Map.of("sesa", Map.of("window_tokens", 0)))));
        ClusterState cs = MappingFixtures.state(
            3,
            List.of(index("sesa-old", 1, "{\"sesa\": {\"models\": {\"sesa\": \"enc@1\"}}}", null)),
            MappingFixtures.composable("sesa-template", "sesa-*", templateMapping),
            MappingFixtures.composable("other", "docs-*", MappingFixtures.mapping(Map.of()))
        );
        IndexSesaMeta reader = reader(cs);
        assertEquals(Map.of("window_tokens", 0), reader.expectedChunking("sesa-new", "sesa"), "the template's record");
        assertNull(reader.expectedChunking("sesa-old", "sesa"), "an existing index without a record: its own mapping counts");
        assertNull(reader.expectedChunking("docs-1", "sesa"), "a template without a record");
        assertNull(reader.expectedChunking("nothing-matches", "sesa"));
    }

    static IndexMetadata withAlias(IndexMetadata im, String alias) {
        return IndexMetadata.builder(im).putAlias(AliasMetadata.builder(alias)).build();
    }

    static SearchRequest targeting(String... expressions) {
        return new SearchRequest(expressions);
    }

    @Test
    void theTargetsOfASearchAreResolvedToTheirIndicesRecords() {
        IndexSesaMeta meta = reader(
            state(
                withAlias(index("logs-1", modelsMeta("sesa", "{\"dense\": \"enc@1\"}")), "logs"),
                withAlias(index("logs-2", modelsMeta("sesa", "{\"dense\": \"enc@1\", \"concepts\": \"esco@2\"}")), "logs"),
                index("plain", null),
                index("string", modelsMeta("sesa", "\"enc@1\""))
            )
        );
        TargetModels viaAlias = meta.targetModels(targeting("logs"), "sesa");
        assertNull(viaAlias.conflict());
        assertEquals(new IndexModels(Map.of("dense", "enc@1", "concepts", "esco@2")), viaAlias.expected(), "the union of agreeing records");
        assertEquals(List.of("logs-1", "logs-2"), viaAlias.indices());
        assertEquals(viaAlias, meta.targetModels(targeting("logs-*"), "sesa"), "a pattern");
        assertEquals(viaAlias, meta.targetModels(targeting("logs", "plain", "remote:logs"), "sesa"), "an index without a record, a remote one");
        assertEquals(new IndexModels(Map.of("dense", "enc@1")), meta.targetModels(targeting("string"), "sesa").expected(), "a string names the dense model");
        assertSame(TargetModels.NONE, meta.targetModels(targeting("plain"), "sesa"));
        assertSame(TargetModels.NONE, meta.targetModels(targeting("missing"), "sesa"), "the search itself reports a missing index");
        assertSame(TargetModels.NONE, meta.targetModels(targeting("remote:logs"), "sesa"));
        assertSame(TargetModels.NONE, meta.targetModels(targeting("logs"), "other_prefix"));
        assertSame(TargetModels.NONE, reader(null).targetModels(targeting("logs"), "sesa"), "no cluster state yet");
        TargetModels all = meta.targetModels(targeting(), "sesa");
        assertEquals(List.of("logs-1", "logs-2", "string"), all.indices(), "no index: all of them");
        assertEquals(viaAlias.expected(), all.expected());
        assertSame(viaAlias, meta.targetModels(targeting("logs"), "sesa"), "resolved once per target and metadata version");
    }

    @Test
    void recordsThatDisagreeOrCannotBeReadAreAConflict() {
        AtomicReference<ClusterState> current = new AtomicReference<>(
            state(1, index("a", modelsMeta("sesa", "{\"dense\": \"enc@1\"}")), index("b", modelsMeta("sesa", "{\"dense\": \"enc@2\"}")))
        );
        IndexSesaMeta meta = new IndexSesaMeta(current::get);
        TargetModels differ = meta.targetModels(targeting("a", "b"), "sesa");
        assertNull(differ.expected());
        assertEquals(List.of("a", "b"), differ.indices());
        assertTrue(differ.conflict().contains("different models (_meta.sesa.models.sesa): [a] {dense=enc@1}, [b] {dense=enc@2}"), differ.conflict());

        // b re-indexed with enc@1: a new metadata version, read again
        current.set(state(2, index("a", modelsMeta("sesa", "{\"dense\": \"enc@1\"}")), index("b", 2, modelsMeta("sesa", "{\"dense\": \"enc@1\"}"), null)));
        assertNull(meta.targetModels(targeting("a", "b"), "sesa").conflict());

        current.set(state(3, index("n", modelsMeta("sesa", "42"))));
        String unreadable = meta.targetModels(targeting("n"), "sesa").conflict();
        assertTrue(unreadable.contains("index [n] has an unreadable [_meta.sesa.models.sesa]") && unreadable.contains("got [42]"), unreadable);
    }

    @Test
    void aRecordIsMatchedRoleByRoleAsIngestDoes() {
        Map<String, String> server = Map.of("dense", "enc@1", "concepts", "esco@2");
        assertTrue(IndexModels.parse("enc@1").matches(server));
        assertTrue(IndexModels.parse(Map.of("concepts", "esco@2")).matches(server));
        assertFalse(IndexModels.parse(Map.of("dense", "enc@1", "concepts", "esco@3")).matches(server));
        assertFalse(IndexModels.parse(Map.of("reranker", "x@1")).matches(server), "a role the server does not report never matches");
        assertNull(IndexModels.parse("enc@1").merge(IndexModels.parse("enc@2")));
        assertEquals(IndexModels.parse(server), IndexModels.parse("enc@1").merge(IndexModels.parse(Map.of("concepts", "esco@2"))));
    }

    /** The messages {@link IndexSesaMeta} logs at WARN while {@code body} runs. */
    static List<String> warningsDuring(Runnable body) {
        org.apache.logging.log4j.core.Logger logger = (org.apache.logging.log4j.core.Logger) LogManager.getLogger(IndexSesaMeta.class);
        List<String> messages = new ArrayList<>();
        AbstractAppender appender = new AbstractAppender("recording", null, null, true, new Property[0]) {
            @Override
            public void append(LogEvent event) {
                if (event.getLevel() == Level.WARN) {
                    synchronized (messages) {
                        messages.add(event.getMessage().getFormattedMessage());
                    }
                }
            }
        };
        appender.start();
        Level before = logger.getLevel();
        logger.addAppender(appender);
        logger.setLevel(Level.WARN);
        try {
            body.run();
        } finally {
            logger.removeAppender(appender);
            logger.setLevel(before);
            appender.stop();
        }
        return messages;
    }
}
