package org.sesa.opensearch.search.ext;

import org.junit.jupiter.api.Test;
import org.opensearch.common.io.stream.BytesStreamOutput;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.common.xcontent.json.JsonXContent;
import org.opensearch.core.common.bytes.BytesReference;
import org.opensearch.core.common.io.stream.StreamInput;
import org.opensearch.core.xcontent.DeprecationHandler;
import org.opensearch.core.xcontent.NamedXContentRegistry;
import org.opensearch.core.xcontent.ToXContent;
import org.opensearch.core.xcontent.XContentBuilder;
import org.opensearch.core.xcontent.XContentParser;
import org.sesa.opensearch.search.Branch;
import org.sesa.opensearch.search.SearchMode;
import org.sesa.opensearch.search.fusion.FusionTechnique;

import java.io.IOException;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SesaSearchExtTests {

    static SesaSearchExt parse(String json) throws IOException {
        try (XContentParser p = JsonXContent.jsonXContent.createParser(NamedXContentRegistry.EMPTY, DeprecationHandler.THROW_UNSUPPORTED_OPERATION, json)) {
            p.nextToken();
            return SesaSearchExt.parse(p);
        }
    }

    /** {@code ext} written to a stream and read back: equal, with the same hash. */
    static SesaSearchExt streamRoundTrip(SesaSearchExt ext) throws IOException {
        try (BytesStreamOutput out = new BytesStreamOutput()) {
            ext.writeTo(out);
            try (StreamInput in = out.bytes().streamInput()) {
                SesaSearchExt back = new SesaSearchExt(in);
                assertEquals(ext, back);
                assertEquals(ext.hashCode(), back.hashCode());
                return back;
            }
        }
    }

    /** {@code ext} rendered as {@code {"sesa": {...}}}, checked to parse back equal; returns the JSON. */
    static String xContentRoundTrip(SesaSearchExt ext) throws IOException {
        XContentBuilder b = JsonXContent.contentBuilder().startObject();
        ext.toXContent(b, ToXContent.EMPTY_PARAMS);
        b.endObject();
        String json = BytesReference.bytes(b).utf8ToString();
        assertEquals(ext, parse(json.substring(json.indexOf(':') + 1, json.length() - 1)));
        return json;
    }

    static String error(String json) {
        return assertThrows(IllegalArgumentException.class, () -> parse(json)).getMessage();
    }

    /** {@code json} is rejected with a message that contains {@code expected}. */
    static void assertRejected(String json, String expected) {
        String message = error(json);
        assertTrue(message.contains(expected), message);
    }

    @Test
    void onlyQueryTextGivesTheDefaults() throws IOException {
        SesaSearchExt ext = parse("{\"query_text\": \"python developer\"}");
        assertEquals("python developer", ext.queryText());
        assertEquals(SearchMode.HYBRID, ext.mode());
        assertNull(ext.technique());
        assertTrue(ext.weights().isEmpty());
        assertNull(ext.rankConstant());
        assertNull(ext.rerank(), "unset: the pipeline's by_default decides");
        assertTrue(ext.explain());
    }

    @Test
    void parsesEveryOption() throws IOException {
        SesaSearchExt ext = parse(
            "{\"query_text\": \"q\", \"mode\": \"concepts\", \"fusion\": {\"technique\": \"rrf\", \"weights\": {\"bm25\": 1, \"concepts\": 0.5},"
                + " \"rank_constant\": 20}, \"rerank\": {\"top_n\": 7, \"timeout\": \"250ms\", \"strict\": true}, \"explain\": false}"
        );
        assertEquals(SearchMode.CONCEPTS, ext.mode());
        assertEquals(FusionTechnique.RRF, ext.technique());
        assertEquals(Map.of(Branch.BM25, 1.0, Branch.CONCEPTS, 0.5), ext.weights());
        assertEquals(20, ext.rankConstant());
        assertEquals(Boolean.TRUE, ext.rerank(), "an object means rerank");
        assertEquals(7, ext.rerankTopN());
        assertEquals(TimeValue.timeValueMillis(250), ext.rerankTimeout());
        assertEquals(Boolean.TRUE, ext.rerankStrict());
        assertFalse(ext.explain());
        assertEquals(Boolean.FALSE, parse("{\"query_text\": \"q\", \"rerank\": false}").rerank());
    }

    @Test
    void roundTripsThroughStreamsAndXContent() throws IOException {
        SesaSearchExt ext = parse(
            "{\"query_text\": \"q\", \"mode\": \"dense\", \"fusion\": {\"technique\": \"min_max\", \"weights\": {\"dense\": 2}},"
                + " \"rerank\": {\"top_n\": 3}, \"explain\": true}"
        );
        streamRoundTrip(ext);
        xContentRoundTrip(ext);
        assertEquals(SesaSearchExt.of("x"), parse("{\"query_text\": \"x\"}"));
    }

    @Test
    void zScoreParsesAndRoundTripsAndTheOlderTechniquesKeepTheirWireOrdinals() throws IOException {
        SesaSearchExt ext = parse("{\"query_text\": \"q\", \"fusion\": {\"technique\": \"z_score\"}}");
        assertEquals(FusionTechnique.Z_SCORE, ext.technique());
        streamRoundTrip(ext);
        xContentRoundTrip(ext);
        // the ext travels between nodes as the technique's ordinal: a node of the previous build still reads these two
        assertEquals(0, FusionTechnique.MIN_MAX.ordinal());
        assertEquals(1, FusionTechnique.RRF.ordinal());
    }

    @Test
    void rejectsBadValuesWithTheirKey() {
        assertRejected("{}", "[ext.sesa.query_text] is required");
        assertRejected("{\"query_text\": \"  \"}", "[ext.sesa.query_text] must not be empty");
        assertRejected("{\"query_text\": 3}", "[ext.sesa.query_text] is required and must be a string");
        assertRejected("{\"query_text\": \"q\", \"mode\": \"semantic\"}", "[ext.sesa.mode] must be one of [bm25, dense, concepts, hybrid]");
        assertRejected("{\"query_text\": \"q\", \"size\": 3}", "[ext.sesa] has unknown key [size]");
        assertRejected("{\"query_text\": \"q\", \"fusion\": {\"technique\": \"sum\"}}", "[ext.sesa.fusion.technique] must be one of [min_max, z_score, rrf]");
        assertRejected("{\"query_text\": \"q\", \"fusion\": {\"norm\": 1}}", "[ext.sesa.fusion] has unknown key [norm]");
        assertRejected("{\"query_text\": \"q\", \"fusion\": {\"weights\": {\"bm25\": -1}}}", "[ext.sesa.fusion.weights.bm25] must be a finite number >= 0");
        assertRejected("{\"query_text\": \"q\", \"fusion\": {\"weights\": {\"sparse\": 1}}}", "unknown branch [sparse]");
        assertRejected("{\"query_text\": \"q\", \"fusion\": {\"weights\": {\"bm25\": \"a\"}}}", "[ext.sesa.fusion.weights.bm25] must be a number");
        assertRejected("{\"query_text\": \"q\", \"fusion\": {\"weights\": [1, 2]}}", "[ext.sesa.fusion.weights] must be an object");
        assertRejected("{\"query_text\": \"q\", \"fusion\": {\"rank_constant\": 0}}", "[ext.sesa.fusion.rank_constant] must be between 1 and 10000");
        assertRejected("{\"query_text\": \"q\", \"fusion\": {\"rank_constant\": 1.5}}", "must be an integer");
        assertRejected("{\"query_text\": \"q\", \"rerank\": \"yes\"}", "[ext.sesa.rerank] must be true, false or an object");
        assertRejected("{\"query_text\": \"q\", \"rerank\": {\"top_n\": 0}}", "[ext.sesa.rerank.top_n] must be between 1 and 1000");
        assertRejected("{\"query_text\": \"q\", \"rerank\": {\"timeout\": \"soon\"}}", "[ext.sesa.rerank.timeout] must be a time value");
        assertRejected("{\"query_text\": \"q\", \"rerank\": {\"timeout\": \"0s\"}}", "[ext.sesa.rerank.timeout] must be positive");
        assertRejected("{\"query_text\": \"q\", \"rerank\": {\"n\": 1}}", "[ext.sesa.rerank] has unknown key [n]");
        assertRejected("{\"query_text\": \"q\", \"rerank\": {\"strict\": \"no\"}}", "[ext.sesa.rerank.strict] must be true or false");
        assertRejected("{\"query_text\": \"q\", \"explain\": 1}", "[ext.sesa.explain] must be true or false");
        assertRejected("\"just text\"", "[ext.sesa] must be an object");
        assertRejected("{\"query_text\": \"" + "x".repeat(SesaSearchExt.MAX_QUERY_CHARS + 1) + "\"}", "longer than");
    }

    @Test
    void rerankWeightParsesRoundTripsAndIsChecked() throws IOException {
        SesaSearchExt ext = parse("{\"query_text\": \"q\", \"rerank\": {\"weight\": 0.3}}");
        assertEquals(0.3, ext.rerankWeight());
        assertEquals(Boolean.TRUE, ext.rerank());
        assertNull(ext.rerankTopN());
        assertNull(parse("{\"query_text\": \"q\", \"rerank\": {\"top_n\": 3}}").rerankWeight(), "unset: the pipeline's rerank_weight");
        assertEquals(1.0, parse("{\"query_text\": \"q\", \"rerank\": {\"weight\": 1}}").rerankWeight());
        assertEquals(0.0, parse("{\"query_text\": \"q\", \"rerank\": {\"weight\": 0}}").rerankWeight());

        assertEquals(0.3, streamRoundTrip(ext).rerankWeight());
        String json = xContentRoundTrip(ext);
        assertTrue(json.contains("\"rerank\":{\"weight\":0.3}"), json);
        assertFalse(ext.equals(parse("{\"query_text\": \"q\", \"rerank\": {\"weight\": 0.4}}")), "the weight counts in equals");
        assertFalse(ext.equals(parse("{\"query_text\": \"q\", \"rerank\": true}")));
    }

    @Test
    void rejectsABadRerankWeight() {
        String outOfRange = "[ext.sesa.rerank.weight] must be a number between 0 and 1";
        assertRejected("{\"query_text\": \"q\", \"rerank\": {\"weight\": 2.0}}", outOfRange + ", got [2.0]");
        assertRejected("{\"query_text\": \"q\", \"rerank\": {\"weight\": -0.5}}", outOfRange);
        assertRejected("{\"query_text\": \"q\", \"rerank\": {\"weight\": \"high\"}}", outOfRange + ", got String [high]");
        assertRejected("{\"query_text\": \"q\", \"rerank\": {\"n\": 1}}", "expected [out_of_domain, strict, timeout, top_n, weight, without_evidence]");
        assertRejected("{\"query_text\": \"q\", \"rerank\": 1}", "an object {top_n, timeout, strict, weight, out_of_domain, without_evidence}");
    }

    /**
     * A rerank choice between {@code "skip"} and {@code "rerank"} ({@code out_of_domain}, {@code without_evidence}):
     * unset by default, parsed, carried over the wire and in JSON, counted in equals, and checked.
     */
    static void assertSkipOrRerankChoice(String key, java.util.function.Function<SesaSearchExt, Boolean> choice) throws IOException {
        String rerank = "{\"query_text\": \"q\", \"rerank\": ";
        assertNull(choice.apply(parse(rerank + "true}")), "unset: the pipeline's " + key);
        assertEquals(Boolean.TRUE, choice.apply(parse(rerank + "{\"" + key + "\": \"skip\"}}")));
        SesaSearchExt ext = parse(rerank + "{\"" + key + "\": \"rerank\"}}");
        assertEquals(Boolean.FALSE, choice.apply(ext));
        assertEquals(Boolean.TRUE, ext.rerank(), "an object means rerank");
        assertEquals(Boolean.FALSE, choice.apply(streamRoundTrip(ext)));
        String json = xContentRoundTrip(ext);
        assertTrue(json.contains("\"rerank\":{\"" + key + "\":\"rerank\"}"), json);
        assertFalse(ext.equals(parse(rerank + "{\"" + key + "\": \"skip\"}}")), "it counts in equals");
        assertRejected(rerank + "{\"" + key + "\": \"always\"}}", "[ext.sesa.rerank." + key + "] must be \"skip\" or \"rerank\", got String [always]");
        assertRejected(rerank + "{\"" + key + "\": false}}", "[ext.sesa.rerank." + key + "] must be");
    }

    @Test
    void outOfDomainParsesRoundTripsAndIsChecked() throws IOException {
        assertSkipOrRerankChoice(SesaSearchExt.OUT_OF_DOMAIN, SesaSearchExt::rerankSkipOutOfDomain);
    }

    @Test
    void withoutEvidenceParsesRoundTripsAndIsChecked() throws IOException {
        assertSkipOrRerankChoice(SesaSearchExt.WITHOUT_EVIDENCE, SesaSearchExt::rerankSkipWithoutEvidence);
        SesaSearchExt both = parse("{\"query_text\": \"q\", \"rerank\": {\"without_evidence\": \"rerank\", \"out_of_domain\": \"skip\"}}");
        assertEquals(Boolean.FALSE, both.rerankSkipWithoutEvidence());
        assertEquals(Boolean.TRUE, both.rerankSkipOutOfDomain(), "the two choices are separate");
        assertEquals(Boolean.FALSE, streamRoundTrip(both).rerankSkipWithoutEvidence());
        String json = xContentRoundTrip(both);
        assertTrue(json.contains("\"rerank\":{\"out_of_domain\":\"skip\",\"without_evidence\":\"rerank\"}"), json);
    }

    @Test
    void fieldNamesASesaTextFieldAndTravels() throws IOException {
        assertNull(parse("{\"query_text\": \"q\"}").field(), "unset: the pipeline's fields");
        SesaSearchExt ext = parse("{\"query_text\": \"q\", \"field\": \"doc.body\"}");
        assertEquals("doc.body", ext.field());
        assertEquals("doc.body", streamRoundTrip(ext).field());
        assertTrue(xContentRoundTrip(ext).contains("\"field\":\"doc.body\""));
        assertFalse(ext.equals(parse("{\"query_text\": \"q\", \"field\": \"body\"}")));
        assertRejected("{\"query_text\": \"q\", \"field\": 3}", "[ext.sesa.field] must be a string");
        assertRejected("{\"query_text\": \"q\", \"field\": \"\"}", "[ext.sesa.field] must be the path of a sesa_text field");
        assertRejected("{\"query_text\": \"q\", \"field\": \"a b\"}", "got [a b]");
        assertRejected("{\"query_text\": \"q\", \"field\": \"a..b\"}", "got [a..b]");
        assertRejected("{\"query_text\": \"q\", \"fields\": \"body\"}", "expected [query_text, mode, fusion, rerank, explain, strict, field]");
    }
}
