package org.sesa.opensearch.search.query;

import org.junit.jupiter.api.Test;
import org.opensearch.common.xcontent.XContentHelper;
import org.opensearch.common.xcontent.json.JsonXContent;
import org.sesa.inference.v1.Concept;
import org.sesa.inference.v1.Embedding;
import org.sesa.inference.v1.EncodeResponse;
import org.sesa.opensearch.search.Branch;
import org.sesa.opensearch.search.SearchTestSupport;
import org.sesa.opensearch.search.ext.SesaSearchExt;
import org.sesa.opensearch.util.SesaFieldNames;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BranchQueryFactoryTests {

    static SesaSearchExt ext(String json) {
        return SesaSearchExt.fromMap(XContentHelper.convertToMap(JsonXContent.jsonXContent, json, true));
    }

    @Test
    void branchQueryJson() {
        BranchQueryFactory p = new BranchQueryFactory(List.of("title^2", "text"), SesaFieldNames.forPrefix("emb"), 100, SearchTestSupport.registry());
        Embedding embedding = Embedding.newBuilder()
            .addDense(0.6f)
            .addDense(0.8f)
            .addConcepts(Concept.newBuilder().setKey("esco-a").setLabel("A").setWeight(0.7f))
            .addConcepts(Concept.newBuilder().setKey("bad.key").setLabel("B").setWeight(0.3f))
            .build();
        QueryEncoding enc = QueryEncoding.from(EncodeResponse.newBuilder().addEmbeddings(embedding).build(), "t");
        Map<Branch, Map<String, Object>> json = p.json(ext("{\"query_text\": \"q\"}"), enc, null);
        assertEquals("{\"multi_match\":{\"query\":\"q\",\"fields\":[\"title^2\",\"text\"]}}", BranchQueries.toJson(json.get(Branch.BM25)));
        assertEquals("{\"knn\":{\"emb_dense\":{\"vector\":[0.6,0.8],\"k\":100}}}", BranchQueries.toJson(json.get(Branch.DENSE)));
        assertEquals(
            "{\"bool\":{\"should\":[{\"rank_feature\":{\"field\":\"emb_concepts.esco-a\",\"linear\":{},\"boost\":0.7}}],\"minimum_should_match\":1}}",
            BranchQueries.toJson(json.get(Branch.CONCEPTS)),
            "a key with a dot cannot be a rank_features feature: skipped"
        );
        Map<String, Object> filter = Map.of("term", Map.of("lang", "py"));
        json = p.json(ext("{\"query_text\": \"q\"}"), enc, filter);
        assertEquals(
            "{\"bool\":{\"must\":[{\"multi_match\":{\"query\":\"q\",\"fields\":[\"title^2\",\"text\"]}}],\"filter\":[{\"term\":{\"lang\":\"py\"}}]}}",
            BranchQueries.toJson(json.get(Branch.BM25))
        );
        assertEquals(
            "{\"knn\":{\"emb_dense\":{\"vector\":[0.6,0.8],\"k\":100,\"filter\":{\"term\":{\"lang\":\"py\"}}}}}",
            BranchQueries.toJson(json.get(Branch.DENSE))
        );
        assertTrue(BranchQueries.toJson(json.get(Branch.CONCEPTS)).endsWith("\"minimum_should_match\":1,\"filter\":[{\"term\":{\"lang\":\"py\"}}]}}"));
    }

    @Test
    void withChunksTheDenseBranchScoresTheBestWindow() {
        BranchQueryFactory p = new BranchQueryFactory(List.of("text"), SesaFieldNames.forPrefix("sesa"), 50, SearchTestSupport.registry());
        assertEquals(false, p.chunks());
        BranchQueryFactory chunked = p.withChunks(true);
        assertTrue(chunked.chunks());
        assertTrue(p.withChunks(false) == p);
        Embedding embedding = Embedding.newBuilder().addDense(0.6f).addDense(0.8f).build();
        QueryEncoding enc = QueryEncoding.from(EncodeResponse.newBuilder().addEmbeddings(embedding).build(), "t");
        Map<Branch, Map<String, Object>> json = chunked.json(ext("{\"query_text\": \"q\", \"mode\": \"dense\"}"), enc, null);
        assertEquals(
            "{\"dis_max\":{\"queries\":[{\"knn\":{\"sesa_dense\":{\"vector\":[0.6,0.8],\"k\":50}}},"
                + "{\"nested\":{\"path\":\"sesa_chunks\",\"query\":{\"knn\":{\"sesa_chunks.dense\":{\"vector\":[0.6,0.8],\"k\":50}}},"
                + "\"score_mode\":\"max\",\"ignore_unmapped\":true}}],\"tie_breaker\":0.0}}",
            BranchQueries.toJson(json.get(Branch.DENSE))
        );
        Map<String, Object> filter = Map.of("term", Map.of("lang", "py"));
        json = chunked.json(ext("{\"query_text\": \"q\", \"mode\": \"dense\"}"), enc, filter);
        assertEquals(
            "{\"dis_max\":{\"queries\":[{\"knn\":{\"sesa_dense\":{\"vector\":[0.6,0.8],\"k\":50,\"filter\":{\"term\":{\"lang\":\"py\"}}}}},"
                + "{\"bool\":{\"must\":[{\"nested\":{\"path\":\"sesa_chunks\",\"query\":{\"knn\":{\"sesa_chunks.dense\":{\"vector\":[0.6,0.8],\"k\":50}}},"
                + "\"score_mode\":\"max\",\"ignore_unmapped\":true}}],\"filter\":[{\"term\":{\"lang\":\"py\"}}]}}],\"tie_breaker\":0.0}}",
            BranchQueries.toJson(json.get(Branch.DENSE)),
            "the user's query filters the parents from outside the nested query"
        );
        // it parses with the node's registry (nested and dis_max are core queries)
        assertTrue(chunked.build(ext("{\"query_text\": \"q\", \"mode\": \"dense\"}"), enc, null).get(Branch.DENSE)
            instanceof org.opensearch.index.query.DisMaxQueryBuilder);
        // a sesa_text field never has chunks
        assertEquals(false, chunked.forSesaText("body").chunks());
    }
}
