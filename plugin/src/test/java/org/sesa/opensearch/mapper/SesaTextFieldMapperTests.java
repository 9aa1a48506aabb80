package org.sesa.opensearch.mapper;

import org.apache.lucene.analysis.standard.StandardAnalyzer;
import org.junit.jupiter.api.Test;
import org.opensearch.Version;
import org.opensearch.cluster.metadata.IndexMetadata;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.xcontent.XContentHelper;
import org.opensearch.common.xcontent.json.JsonXContent;
import org.opensearch.core.common.bytes.BytesReference;
import org.opensearch.core.xcontent.ToXContent;
import org.opensearch.core.xcontent.XContentBuilder;
import org.opensearch.index.analysis.AnalyzerScope;
import org.opensearch.index.analysis.IndexAnalyzers;
import org.opensearch.index.analysis.NamedAnalyzer;
import org.opensearch.index.mapper.ContentPath;
import org.opensearch.index.mapper.Mapper;
import org.opensearch.index.mapper.MapperParsingException;
import org.opensearch.index.mapper.TextFieldMapper;

import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The {@code sesa_text} mapper: a text field with {@code concept_space}, {@code english} by default, that serializes
 * back as {@code sesa_text} and refuses what it does not support with messages that name the field.
 */
class SesaTextFieldMapperTests {

    private static NamedAnalyzer analyzer(String name) {
        return new NamedAnalyzer(name, AnalyzerScope.INDEX, new StandardAnalyzer());
    }

    private static final IndexAnalyzers ANALYZERS = new IndexAnalyzers(
        Map.of("default", analyzer("default"), "english", analyzer("english"), "standard", analyzer("standard")),
        Map.of(),
        Map.of()
    );

    /** A parser context with the analyzers above (what parsing a text field needs of the index). */
    private static Mapper.TypeParser.ParserContext context(boolean withinMultiField) {
        Mapper.TypeParser.ParserContext base = new Mapper.TypeParser.ParserContext(
            name -> null,
            null,
            type -> null,
            Version.CURRENT,
            () -> null,
            null,
            null
        ) {
            @Override
            public IndexAnalyzers getIndexAnalyzers() {
                return ANALYZERS;
            }
        };
        if (withinMultiField == false) {
            return base;
        }
        return new Mapper.TypeParser.ParserContext(name -> null, null, type -> null, Version.CURRENT, () -> null, null, null) {
            @Override
            public IndexAnalyzers getIndexAnalyzers() {
                return ANALYZERS;
            }

            @Override
            public boolean isWithinMultiField() {
                return true;
            }
        };
    }

    private static SesaTextFieldMapper.Builder parse(String name, String json) {
        Map<String, Object> node = new HashMap<>(XContentHelper.convertToMap(JsonXContent.jsonXContent, json, true));
        node.putIfAbsent("type", "sesa_text"); // as OpenSearch hands it over: the builder takes the type out itself
        return new SesaTextFieldMapper.TypeParser().parse(name, node, context(false));
    }

    private static SesaTextFieldMapper build(SesaTextFieldMapper.Builder b) {
        Settings settings = Settings.builder().put(IndexMetadata.SETTING_VERSION_CREATED, Version.CURRENT).build();
        return b.build(new Mapper.BuilderContext(settings, new ContentPath()));
    }

    /** The mapper as GET _mapping shows it: {@code {"<name>": {...}}} → its body. */
    @SuppressWarnings("unchecked")
    private static Map<String, Object> serialized(Mapper m) throws IOException {
        XContentBuilder b = JsonXContent.contentBuilder().startObject();
        m.toXContent(b, ToXContent.EMPTY_PARAMS);
        b.endObject();
        Map<String, Object> all = XContentHelper.convertToMap(BytesReference.bytes(b), true, b.contentType()).v2();
        return (Map<String, Object>) all.get(m.simpleName());
    }

    @Test
    void aBareFieldIsEnglishTextInTheServersDefaultConceptSpace() throws IOException {
        SesaTextFieldMapper m = build(parse("body", "{\"type\": \"sesa_text\"}"));
        assertInstanceOf(TextFieldMapper.class, m, "searchable like a text field");
        assertEquals("", m.conceptSpace());
        assertEquals("english", m.fieldType().indexAnalyzer().name());
        assertEquals("text", m.fieldType().typeName(), "the text field type: text queries and highlighters work unchanged");
        assertTrue(m.fieldType().isSearchable());
        Map<String, Object> out = serialized(m);
        assertEquals("sesa_text", out.get("type"));
        assertEquals("english", out.get("analyzer"));
        assertFalse(out.containsKey("concept_space"), "the default is not written");
    }

    @Test
    void parametersOfItsOwnAndOfTextAreKeptAndWrittenBack() throws IOException {
        SesaTextFieldMapper m = build(parse("body", "{\"concept_space\": \"esco-skills\", \"analyzer\": \"standard\", \"index_phrases\": true}"));
        assertEquals("esco-skills", m.conceptSpace());
        assertEquals("standard", m.fieldType().indexAnalyzer().name());
        Map<String, Object> out = serialized(m);
        assertEquals("esco-skills", out.get("concept_space"));
        assertEquals("standard", out.get("analyzer"));
        assertEquals(true, out.get("index_phrases"));

        // what is written back parses into the same mapper (a node restart, a mapping merge)
        Map<String, Object> again = new HashMap<>(out);
        SesaTextFieldMapper reparsed = build(new SesaTextFieldMapper.TypeParser().parse("body", again, context(false)));
        assertEquals(out, serialized(reparsed));
    }

    @Test
    void badParametersAreRefusedWithMessagesThatNameTheField() {
        String[][] cases = {
            { "{\"concept_space\": \"\"}", "[concept_space] of sesa_text field [body] must be the name of one of the inference server's concept spaces" },
            { "{\"concept_space\": \"two words\"}", "got [two words]" },
            { "{\"concept_space\": 7}", "got Integer [7]" },
            { "{\"concept_space\": [\"a\"]}", "[concept_space] of sesa_text field [body]" },
            { "{\"chunking\": true}", "[chunking] of sesa_text field [body] must be an object such as" },
            { "{\"chunking\": {\"size\": 3}}", "[chunking] of sesa_text field [body] has unknown key [size]" },
            { "{\"chunking\": {\"window_tokens\": 64, \"overlap_tokens\": 40}}", "[chunking.overlap_tokens] of sesa_text field [body] must be at most half" },
            { "{\"chunking\": {\"max_windows\": 1.5}}", "[chunking.max_windows] of sesa_text field [body] must be an integer" },
            { "{\"colour\": \"blue\"}", "unknown parameter [colour] on mapper [body] of type [sesa_text]" },
            { "{\"analyzer\": \"klingon\"}", "klingon" } };
        for (String[] c : cases) {
            Exception e = assertThrows(Exception.class, () -> parse("body", c[0]), c[0]);
            assertTrue(e.getMessage().contains(c[1]), () -> c[0] + ": [" + e.getMessage() + "] should contain [" + c[1] + "]");
        }
    }

    @Test
    void itCannotBeAMultiField() {
        Map<String, Object> node = new HashMap<>();
        MapperParsingException e = assertThrows(
            MapperParsingException.class,
            () -> new SesaTextFieldMapper.TypeParser().parse("raw", node, context(true))
        );
        assertTrue(e.getMessage().contains("sesa_text field [raw] cannot be a multi-field"), e.getMessage());
    }

    @Test
    void theConceptSpaceCannotChange() {
        SesaTextFieldMapper a = build(parse("body", "{\"concept_space\": \"esco-skills\"}"));
        SesaTextFieldMapper same = build(parse("body", "{\"concept_space\": \"esco-skills\"}"));
        SesaTextFieldMapper other = build(parse("body", "{\"concept_space\": \"onet\"}"));
        assertEquals("esco-skills", ((SesaTextFieldMapper) a.merge(same)).conceptSpace());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> a.merge(other));
        assertTrue(e.getMessage().contains("concept_space"), e.getMessage());
    }

    @Test
    void chunkingIsStoredWithEveryKeyAndCannotChange() throws IOException {
        SesaTextFieldMapper off = build(parse("body", "{}"));
        assertNull(off.chunking(), "absent: the text is encoded whole");
        assertFalse(serialized(off).containsKey("chunking"));

        SesaTextFieldMapper on = build(parse("body", "{\"chunking\": {\"max_windows\": 8}}"));
        assertEquals(0, on.chunking().getWindowTokens());
        assertEquals(32, on.chunking().getOverlapTokens());
        assertEquals(8, on.chunking().getMaxWindows());
        Map<String, Object> out = serialized(on);
        assertEquals(Map.of("window_tokens", 0, "overlap_tokens", 32, "max_windows", 8), out.get("chunking"));
        SesaTextFieldMapper reparsed = build(new SesaTextFieldMapper.TypeParser().parse("body", new HashMap<>(out), context(false)));
        assertEquals(out, serialized(reparsed));
        assertEquals(on.chunking(), ((SesaTextFieldMapper) on.merge(reparsed)).chunking(), "the same option merges");

        SesaTextFieldMapper defaults = build(parse("body", "{\"chunking\": {}}"));
        assertEquals(64, defaults.chunking().getMaxWindows(), "{} takes every default, and turns chunking on");
        for (SesaTextFieldMapper other : List.of(off, defaults)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> on.merge(other));
            assertTrue(e.getMessage().contains("chunking"), e.getMessage());
        }
    }

    @Test
    void targetPrefixOfAField() {
        assertEquals("body_sesa", SesaTextFieldMapper.targetPrefix("body"));
        assertEquals("doc.body_sesa", SesaTextFieldMapper.targetPrefix("doc.body"));
        assertEquals(List.of("body"), List.of(build(parse("body", "{}")).simpleName()));
    }
}
