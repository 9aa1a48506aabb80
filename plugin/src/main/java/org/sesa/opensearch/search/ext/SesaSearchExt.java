package org.sesa.opensearch.search.ext;

import org.opensearch.common.unit.TimeValue;
import org.opensearch.core.common.io.stream.StreamInput;
import org.opensearch.core.common.io.stream.StreamOutput;
import org.opensearch.core.xcontent.XContentBuilder;
import org.opensearch.core.xcontent.XContentParser;
import org.opensearch.search.SearchExtBuilder;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.sesa.opensearch.search.Branch;
import org.sesa.opensearch.search.SearchMode;
import org.sesa.opensearch.search.fusion.FusionSettings;
import org.sesa.opensearch.search.fusion.FusionTechnique;
import org.sesa.opensearch.util.Texts;

import java.io.IOException;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.BiFunction;

/**
 * The {@code ext.sesa} section of a search request: the query text and the per-request choices. The
 * pipeline's processor settings are the defaults; what is set here overrides them for one request.
 *
 * <pre>
 * "ext": { "sesa": {
 *     "query_text": "...",                       required, non-blank
 *     "mode": "hybrid",                          bm25 | dense | concepts | hybrid
 *     "fusion": { "technique": "rrf", "weights": {"bm25": 1, "dense": 1, "concepts": 0.5}, "rank_constant": 60 },
 *                                                technique: min_max | z_score | rrf (sesa_fuse's default: z_score)
 *     "rerank": true,                            or { "top_n": 20, "timeout": "2s", "strict": false, "weight": 0.6,
 *                                                     "out_of_domain": "skip",     skip | rerank
 *                                                     "without_evidence": "skip" } skip | rerank
 *     "explain": true,
 *     "strict": false,                           true: fail when the query cannot be encoded (hybrid degrades to BM25)
 *     "field": "body"                            a sesa_text field: BM25 on it, vectors from its body_sesa_* fields
 * } }
 * </pre>
 *
 * Every mistake is an {@link IllegalArgumentException} (HTTP 400) that names the offending key.
 */
public final class SesaSearchExt extends SearchExtBuilder {

    public static final String NAME = "sesa";

    public static final String QUERY_TEXT = "query_text";
    public static final String MODE = "mode";
    public static final String FUSION = "fusion";
    public static final String TECHNIQUE = "technique";
    public static final String WEIGHTS = "weights";
    public static final String RANK_CONSTANT = "rank_constant";
    public static final String RERANK = "rerank";
    public static final String TOP_N = "top_n";
    public static final String TIMEOUT = "timeout";
    public static final String STRICT = "strict";
    public static final String WEIGHT = "weight";
    public static final String OUT_OF_DOMAIN = "out_of_domain";
    public static final String WITHOUT_EVIDENCE = "without_evidence";
    /**
     * {@code out_of_domain} and {@code without_evidence} values: keep the fused order (for a query outside the
     * reranker's domain; for a search whose indices have no evidence that rerank helps), or rerank anyway.
     */
    public static final String SKIP = "skip";
    public static final String RERANK_ANYWAY = "rerank";
    public static final String EXPLAIN = "explain";
    public static final String FIELD = "field";

    private static final Set<String> KEYS = Set.of(QUERY_TEXT, MODE, FUSION, RERANK, EXPLAIN, STRICT, FIELD);
    private static final Set<String> FUSION_KEYS = Set.of(TECHNIQUE, WEIGHTS, RANK_CONSTANT);
    private static final Set<String> RERANK_KEYS = Set.of(TOP_N, TIMEOUT, STRICT, WEIGHT, OUT_OF_DOMAIN, WITHOUT_EVIDENCE);

    public static final int MAX_QUERY_CHARS = 10_000;
    public static final int MAX_TOP_N = 1_000;

    private final String queryText;
    private final SearchMode mode;
    private final FusionTechnique technique; // null: pipeline
    private final Map<Branch, Double> weights; // only the branches the request sets
    private final Integer rankConstant; // null: pipeline
    private final Boolean rerank; // null: the pipeline's by_default
    private final Integer rerankTopN;
    private final TimeValue rerankTimeout;
    private final Boolean rerankStrict;
    private final Double rerankWeight; // null: the pipeline's rerank_weight
    private final Boolean rerankSkipOutOfDomain; // null: the pipeline's out_of_domain
    private final Boolean rerankSkipWithoutEvidence; // null: the pipeline's without_evidence
    private final boolean explain;
    private final Boolean strict; // null: the pipeline's sesa_query strict
    private final String field; // null: the pipeline's fields; else a sesa_text field

    public SesaSearchExt(
        String queryText,
        SearchMode mode,
        FusionTechnique technique,
        Map<Branch, Double> weights,
        Integer rankConstant,
        Boolean rerank,
        Integer rerankTopN,
        TimeValue rerankTimeout,
        Boolean rerankStrict,
        boolean explain,
        Boolean strict,
        Double rerankWeight,
        Boolean rerankSkipOutOfDomain,
        Boolean rerankSkipWithoutEvidence,
        String field
    ) {
        this.queryText = checkQueryText(queryText);
        this.mode = Objects.requireNonNull(mode, "mode");
        this.technique = technique;
        EnumMap<Branch, Double> w = new EnumMap<>(Branch.class);
        if (weights != null) {
            weights.forEach((b, v) -> {
                FusionSettings.checkWeight(v, "ext.sesa.fusion.weights." + b.key());
                w.put(b, v);
            });
        }
        this.weights = Map.copyOf(w);
        if (rankConstant != null) {
            FusionSettings.checkRankConstant(rankConstant, "ext.sesa.fusion.rank_constant");
        }
        this.rankConstant = rankConstant;
        this.rerank = rerank;
        if (rerankTopN != null && (rerankTopN < 1 || rerankTopN > MAX_TOP_N)) {
            throw new IllegalArgumentException("[ext.sesa.rerank.top_n] must be between 1 and " + MAX_TOP_N + ", got [" + rerankTopN + "]");
        }
        this.rerankTopN = rerankTopN;
        if (rerankTimeout != null && rerankTimeout.millis() <= 0) {
            throw new IllegalArgumentException("[ext.sesa.rerank.timeout] must be positive, got [" + rerankTimeout + "]");
        }
        this.rerankTimeout = rerankTimeout;
        this.rerankStrict = rerankStrict;
        if (rerankWeight != null) {
            checkRerankWeight(rerankWeight, "ext.sesa.rerank.weight");
        }
        this.rerankWeight = rerankWeight;
        this.rerankSkipOutOfDomain = rerankSkipOutOfDomain;
        this.rerankSkipWithoutEvidence = rerankSkipWithoutEvidence;
        this.explain = explain;
        this.strict = strict;
        this.field = field == null ? null : checkField(field);
    }

    /** A field path: non-blank, no whitespace, no leading, trailing or doubled dot. */
    private static String checkField(String field) {
        if (field.isEmpty()
            || field.chars().anyMatch(Character::isWhitespace)
            || field.startsWith(".")
            || field.endsWith(".")
            || field.contains("..")) {
            throw new IllegalArgumentException("[ext.sesa.field] must be the path of a sesa_text field such as \"body\", got [" + field + "]");
        }
        return field;
    }

    /** Only the query text; everything else as the pipeline says. */
    public static SesaSearchExt of(String queryText) {
        return new SesaSearchExt(queryText, SearchMode.HYBRID, null, null, null, null, null, null, null, true, null, null, null, null, null);
    }

    public SesaSearchExt(StreamInput in) throws IOException {
        this(
            in.readString(),
            in.readEnum(SearchMode.class),
            in.readBoolean() ? in.readEnum(FusionTechnique.class) : null,
            readWeights(in),
            in.readOptionalVInt(),
            in.readOptionalBoolean(),
            in.readOptionalVInt(),
            in.readOptionalTimeValue(),
            in.readOptionalBoolean(),
            in.readBoolean(),
            in.readOptionalBoolean(),
            in.readOptionalDouble(), // added after the others, so the older fields keep their place on the wire
            in.readOptionalBoolean(),
            in.readOptionalBoolean(),
            in.readOptionalString() // added last, so the older fields keep their place on the wire
        );
    }

    private static Map<Branch, Double> readWeights(StreamInput in) throws IOException {
        int n = in.readVInt();
        Map<Branch, Double> w = new EnumMap<>(Branch.class);
        for (int i = 0; i < n; i++) {
            w.put(in.readEnum(Branch.class), in.readDouble());
        }
        return w;
    }

    @Override
    public void writeTo(StreamOutput out) throws IOException {
        out.writeString(queryText);
        out.writeEnum(mode);
        out.writeBoolean(technique != null);
        if (technique != null) {
            out.writeEnum(technique);
        }
        out.writeVInt(weights.size());
        for (Branch b : Branch.values()) {
            if (weights.containsKey(b)) {
                out.writeEnum(b);
                out.writeDouble(weights.get(b));
            }
        }
        out.writeOptionalVInt(rankConstant);
        out.writeOptionalBoolean(rerank);
        out.writeOptionalVInt(rerankTopN);
        out.writeOptionalTimeValue(rerankTimeout);
        out.writeOptionalBoolean(rerankStrict);
        out.writeBoolean(explain);
        out.writeOptionalBoolean(strict);
        out.writeOptionalDouble(rerankWeight);
        out.writeOptionalBoolean(rerankSkipOutOfDomain);
        out.writeOptionalBoolean(rerankSkipWithoutEvidence);
        out.writeOptionalString(field);
    }

    @Override
    public String getWriteableName() {
        return NAME;
    }

    /** The parser registered for {@code ext.sesa}; the parser stands on the section's value. */
    public static SesaSearchExt parse(XContentParser parser) throws IOException {
        XContentParser.Token token = parser.currentToken();
        if (token == null) {
            token = parser.nextToken();
        }
        if (token != XContentParser.Token.START_OBJECT) {
            throw new IllegalArgumentException("[ext.sesa] must be an object such as {\"query_text\": \"...\"}, got " + token);
        }
        return fromMap(parser.map());
    }

    /** Builds and validates the extension from its JSON object. */
    public static SesaSearchExt fromMap(Map<String, Object> map) {
        for (String key : map.keySet()) {
            if (KEYS.contains(key) == false) {
                throw new IllegalArgumentException(
                    "[ext.sesa] has unknown key [" + key + "]: expected " + "[query_text, mode, fusion, rerank, explain, strict, field]"
                );
            }
        }
        Object text = map.get(QUERY_TEXT);
        if (text instanceof String == false) {
            throw new IllegalArgumentException(
                "[ext.sesa.query_text] is required and must be a string, got " + (text == null ? "nothing" : describe(text))
            );
        }
        SearchMode mode = SearchMode.HYBRID;
        if (map.containsKey(MODE)) {
            mode = SearchMode.fromKey(string(map.get(MODE), "ext.sesa.mode"), "ext.sesa.mode");
        }

        FusionTechnique technique = null;
        Map<Branch, Double> weights = null;
        Integer rankConstant = null;
        if (map.containsKey(FUSION)) {
            Map<String, Object> fusion = object(map.get(FUSION), "ext.sesa.fusion", FUSION_KEYS);
            if (fusion.containsKey(TECHNIQUE)) {
                technique = FusionTechnique.fromKey(string(fusion.get(TECHNIQUE), "ext.sesa.fusion.technique"), "ext.sesa.fusion.technique");
            }
            if (fusion.containsKey(WEIGHTS)) {
                weights = parseWeights(fusion.get(WEIGHTS), "ext.sesa.fusion.weights");
            }
            if (fusion.containsKey(RANK_CONSTANT)) {
                rankConstant = integer(fusion.get(RANK_CONSTANT), "ext.sesa.fusion.rank_constant");
            }
        }

        Boolean rerank = null;
        Integer topN = null;
        TimeValue timeout = null;
        Boolean strict = null;
        Double weight = null;
        Boolean skipOutOfDomain = null;
        Boolean skipWithoutEvidence = null;
        if (map.containsKey(RERANK)) {
            Object r = map.get(RERANK);
            if (r instanceof Boolean b) {
                rerank = b;
            } else if (r instanceof Map) {
                rerank = true;
                Map<String, Object> opts = object(r, "ext.sesa.rerank", RERANK_KEYS);
                topN = rerankOption(opts, TOP_N, SesaSearchExt::integer);
                timeout = rerankOption(opts, TIMEOUT, SesaSearchExt::timeValue);
                strict = rerankOption(opts, STRICT, SesaSearchExt::bool);
                weight = rerankOption(opts, WEIGHT, SesaSearchExt::parseRerankWeight);
                skipOutOfDomain = rerankOption(opts, OUT_OF_DOMAIN, SesaSearchExt::parseSkipOrRerank);
                skipWithoutEvidence = rerankOption(opts, WITHOUT_EVIDENCE, SesaSearchExt::parseSkipOrRerank);
            } else {
                throw new IllegalArgumentException(
                    "[ext.sesa.rerank] must be true, false or an object {top_n, timeout, strict, weight, out_of_domain, without_evidence}, got " + describe(r)
                );
            }
        }
        boolean explain = map.containsKey(EXPLAIN) ? bool(map.get(EXPLAIN), "ext.sesa.explain") : true;
        Boolean queryStrict = map.containsKey(STRICT) ? bool(map.get(STRICT), "ext.sesa.strict") : null;
        String field = map.containsKey(FIELD) ? string(map.get(FIELD), "ext.sesa.field") : null;
        return new SesaSearchExt(
            (String) text,
            mode,
            technique,
            weights,
            rankConstant,
            rerank,
            topN,
            timeout,
            strict,
            explain,
            queryStrict,
            weight,
            skipOutOfDomain,
            skipWithoutEvidence,
            field
        );
    }

    /** Parses a {@code {"bm25": 0.4, ...}} object; keys must be branch names, values numbers >= 0. */
    public static Map<Branch, Double> parseWeights(Object value, String what) {
        if (!(value instanceof Map<?, ?> m)) {
            throw new IllegalArgumentException("[" + what + "] must be an object such as {\"bm25\": 0.4, \"dense\": 0.4, \"concepts\": 0.2}, got " + describe(value));
        }
        Map<Branch, Double> out = new EnumMap<>(Branch.class);
        for (Map.Entry<?, ?> e : m.entrySet()) {
            Branch b = Branch.fromKey(String.valueOf(e.getKey()), what);
            if (!(e.getValue() instanceof Number n)) {
                throw new IllegalArgumentException("[" + what + "." + b.key() + "] must be a number, got " + describe(e.getValue()));
            }
            double v = n.doubleValue();
            FusionSettings.checkWeight(v, what + "." + b.key());
            out.put(b, v);
        }
        return out;
    }

    /**
     * Checks a rerank blend weight: a finite number in {@code [0, 1]} (1 = the cross-encoder score alone, 0 = the
     * fused score alone).
     *
     * @param what the key to name in the error, e.g. {@code ext.sesa.rerank.weight}
     */
    public static double checkRerankWeight(double w, String what) {
        if (Double.isFinite(w) == false || w < 0 || w > 1) {
            throw new IllegalArgumentException("[" + what + "] must be a number between 0 and 1, got [" + w + "]");
        }
        return w;
    }

    /**
     * Parses an {@code out_of_domain} or {@code without_evidence} choice: {@code "skip"} (true: keep the fused order
     * of a query outside the reranker's domain, of a search without evidence that rerank helps) or {@code "rerank"}
     * (false: rerank it anyway).
     */
    /** The parsed {@code ext.sesa.rerank.<key>}, or null when the request does not set it. */
    private static <T> T rerankOption(Map<String, Object> opts, String key, BiFunction<Object, String, T> parse) {
        return opts.containsKey(key) ? parse.apply(opts.get(key), "ext.sesa.rerank." + key) : null;
    }

    public static boolean parseSkipOrRerank(Object value, String what) {
        if (SKIP.equals(value)) {
            return true;
        }
        if (RERANK_ANYWAY.equals(value)) {
            return false;
        }
        throw new IllegalArgumentException(
            "[" + what + "] must be \"" + SKIP + "\" or \"" + RERANK_ANYWAY + "\", got " + describe(value)
        );
    }

    private static double parseRerankWeight(Object value, String what) {
        if (value instanceof Number n) {
            return checkRerankWeight(n.doubleValue(), what);
        }
        throw new IllegalArgumentException("[" + what + "] must be a number between 0 and 1, got " + describe(value));
    }

    private static String checkQueryText(String text) {
        if (text == null || Texts.isBlank(text)) {
            throw new IllegalArgumentException("[ext.sesa.query_text] must not be empty");
        }
        if (text.length() > MAX_QUERY_CHARS) {
            throw new IllegalArgumentException(
                "[ext.sesa.query_text] is longer than " + MAX_QUERY_CHARS + " characters (" + text.length() + ")"
            );
        }
        return text;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> object(Object value, String what, Set<String> allowed) {
        if (value instanceof Map == false) {
            throw new IllegalArgumentException("[" + what + "] must be an object, got " + describe(value));
        }
        Map<String, Object> m = (Map<String, Object>) value;
        for (String key : m.keySet()) {
            if (allowed.contains(key) == false) {
                throw new IllegalArgumentException("[" + what + "] has unknown key [" + key + "]: expected " + allowed.stream().sorted().toList());
            }
        }
        return m;
    }

    private static String string(Object value, String what) {
        if (value instanceof String s) {
            return s;
        }
        throw new IllegalArgumentException("[" + what + "] must be a string, got " + describe(value));
    }

    private static boolean bool(Object value, String what) {
        if (value instanceof Boolean b) {
            return b;
        }
        throw new IllegalArgumentException("[" + what + "] must be true or false, got " + describe(value));
    }

    private static int integer(Object value, String what) {
        if (value instanceof Number n && n.doubleValue() == Math.rint(n.doubleValue()) && Math.abs(n.doubleValue()) <= Integer.MAX_VALUE) {
            return n.intValue();
        }
        throw new IllegalArgumentException("[" + what + "] must be an integer, got " + describe(value));
    }

    private static TimeValue timeValue(Object value, String what) {
        String s = string(value, what);
        try {
            return TimeValue.parseTimeValue(s, what);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("[" + what + "] must be a time value such as 2s or 500ms, got [" + s + "]");
        }
    }

    private static String describe(Object value) {
        if (value == null) {
            return "null";
        }
        String type = value instanceof Map ? "object" : value instanceof java.util.List ? "array" : value.getClass().getSimpleName();
        return type + " [" + value + "]";
    }

    /** The {@code ext.sesa} of a request source, or null. */
    public static SesaSearchExt find(SearchSourceBuilder source) {
        if (source == null || source.ext() == null) {
            return null;
        }
        for (SearchExtBuilder b : source.ext()) {
            if (b instanceof SesaSearchExt s) {
                return s;
            }
        }
        return null;
    }

    @Override
    public XContentBuilder toXContent(XContentBuilder builder, Params params) throws IOException {
        builder.startObject(NAME);
        builder.field(QUERY_TEXT, queryText);
        builder.field(MODE, mode.key());
        if (technique != null || weights.isEmpty() == false || rankConstant != null) {
            builder.startObject(FUSION);
            if (technique != null) {
                builder.field(TECHNIQUE, technique.key());
            }
            if (weights.isEmpty() == false) {
                Map<String, Object> w = new LinkedHashMap<>();
                for (Branch b : Branch.values()) {
                    if (weights.containsKey(b)) {
                        w.put(b.key(), weights.get(b));
                    }
                }
                builder.field(WEIGHTS, w);
            }
            if (rankConstant != null) {
                builder.field(RANK_CONSTANT, rankConstant);
            }
            builder.endObject();
        }
        if (rerank != null) {
            if (rerankTopN == null
                && rerankTimeout == null
                && rerankStrict == null
                && rerankWeight == null
                && rerankSkipOutOfDomain == null
                && rerankSkipWithoutEvidence == null) {
                builder.field(RERANK, rerank.booleanValue());
            } else {
                builder.startObject(RERANK);
                if (rerankTopN != null) {
                    builder.field(TOP_N, rerankTopN);
                }
                if (rerankTimeout != null) {
                    builder.field(TIMEOUT, rerankTimeout.getStringRep());
                }
                if (rerankStrict != null) {
                    builder.field(STRICT, rerankStrict.booleanValue());
                }
                if (rerankWeight != null) {
                    builder.field(WEIGHT, rerankWeight.doubleValue());
                }
                if (rerankSkipOutOfDomain != null) {
                    builder.field(OUT_OF_DOMAIN, rerankSkipOutOfDomain ? SKIP : RERANK_ANYWAY);
                }
                if (rerankSkipWithoutEvidence != null) {
                    builder.field(WITHOUT_EVIDENCE, rerankSkipWithoutEvidence ? SKIP : RERANK_ANYWAY);
                }
                builder.endObject();
            }
        }
        builder.field(EXPLAIN, explain);
        if (strict != null) {
            builder.field(STRICT, strict.booleanValue());
        }
        if (field != null) {
            builder.field(FIELD, field);
        }
        return builder.endObject();
    }

    public String queryText() {
        return queryText;
    }

    public SearchMode mode() {
        return mode;
    }

    public FusionTechnique technique() {
        return technique;
    }

    public Map<Branch, Double> weights() {
        return weights;
    }

    public Integer rankConstant() {
        return rankConstant;
    }

    /** null when the request does not say (the pipeline's {@code by_default} decides). */
    public Boolean rerank() {
        return rerank;
    }

    public Integer rerankTopN() {
        return rerankTopN;
    }

    public TimeValue rerankTimeout() {
        return rerankTimeout;
    }

    public Boolean rerankStrict() {
        return rerankStrict;
    }

    /** The blend weight of the cross-encoder score, in [0, 1]; null when the request does not say (the pipeline's {@code rerank_weight} decides). */
    public Double rerankWeight() {
        return rerankWeight;
    }

    /** true: keep the fused order when the query is outside the reranker's domain; null when the request does not say (the pipeline's {@code out_of_domain} decides). */
    public Boolean rerankSkipOutOfDomain() {
        return rerankSkipOutOfDomain;
    }

    /**
     * true: keep the fused order when the candidates' indices have no evidence record that says rerank helps; null
     * when the request does not say (the pipeline's {@code without_evidence} decides).
     */
    public Boolean rerankSkipWithoutEvidence() {
        return rerankSkipWithoutEvidence;
    }

    public boolean explain() {
        return explain;
    }

    /** null when the request does not say (the pipeline's {@code sesa_query.strict} decides). */
    public Boolean strict() {
        return strict;
    }

    /** The sesa_text field the search is about; null: the pipeline's configured fields. */
    public String field() {
        return field;
    }

    @Override
    public boolean equals(Object o) {
        if (this == o) {
            return true;
        }
        if (o instanceof SesaSearchExt == false) {
            return false;
        }
        SesaSearchExt that = (SesaSearchExt) o;
        return explain == that.explain
            && queryText.equals(that.queryText)
            && mode == that.mode
            && technique == that.technique
            && weights.equals(that.weights)
            && Objects.equals(rankConstant, that.rankConstant)
            && Objects.equals(rerank, that.rerank)
            && Objects.equals(rerankTopN, that.rerankTopN)
            && Objects.equals(rerankTimeout, that.rerankTimeout)
            && Objects.equals(rerankStrict, that.rerankStrict)
            && Objects.equals(rerankWeight, that.rerankWeight)
            && Objects.equals(rerankSkipOutOfDomain, that.rerankSkipOutOfDomain)
            && Objects.equals(rerankSkipWithoutEvidence, that.rerankSkipWithoutEvidence)
            && Objects.equals(strict, that.strict)
            && Objects.equals(field, that.field);
    }

    @Override
    public int hashCode() {
        return Objects.hash(
            queryText,
            mode,
            technique,
            weights,
            rankConstant,
            rerank,
            rerankTopN,
            rerankTimeout,
            rerankStrict,
            rerankWeight,
            rerankSkipOutOfDomain,
            rerankSkipWithoutEvidence,
            explain,
            strict,
            field
        );
    }
}
