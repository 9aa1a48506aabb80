package org.sesa.opensearch.ingest;

import io.grpc.Status;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.opensearch.ExceptionsHelper;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.ingest.IngestDocument;
import org.opensearch.ingest.IngestDocumentWrapper;
import org.sesa.opensearch.FakeInference;
import org.sesa.opensearch.FakeInferenceFixture;
import org.sesa.opensearch.index.MappingFixtures;
import org.sesa.opensearch.index.MappingVerdict;
import org.sesa.opensearch.index.TargetMappings;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SesaEncodeProcessorTests {

    @RegisterExtension
    final FakeInferenceFixture fake = new FakeInferenceFixture(b -> b.authToken("s3cret").ingestTimeout(() -> TimeValue.timeValueSeconds(2)));
    private final FakeInference service = fake.service;
    private Object expectedModels;
    /** What the target index maps; by default every SESA field as the fake server's output needs (dimension 2). */
    private TargetMappings targetMappings = MappingFixtures.FITS;

    private SesaEncodeProcessor processor(Object... kv) throws Exception {
        Map<String, Object> cfg = new HashMap<>();
        cfg.put("field_map", Map.of("title,text", "sesa"));
        for (int i = 0; i < kv.length; i += 2) {
            cfg.put((String) kv[i], kv[i + 1]);
        }
        return new SesaEncodeProcessorFactory(fake::client, (index, prefix) -> expectedModels, (index, names) -> targetMappings.verdict(index, names))
            .create(Map.of(), "tag", null, cfg);
    }

    private static IngestDocument doc(String id, Object... kv) {
        Map<String, Object> source = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            source.put((String) kv[i], kv[i + 1]);
        }
        return new IngestDocument("idx", id, null, null, null, source);
    }

    private static List<IngestDocumentWrapper> wrap(List<IngestDocument> docs) {
        List<IngestDocumentWrapper> out = new ArrayList<>();
        for (int i = 0; i < docs.size(); i++) {
            out.add(new IngestDocumentWrapper(i, 0, docs.get(i), null));
        }
        return out;
    }

    /** Runs batchExecute and returns the results by slot. */
    private static IngestDocumentWrapper[] run(SesaEncodeProcessor p, List<IngestDocument> docs) throws Exception {
        CompletableFuture<List<IngestDocumentWrapper>> f = new CompletableFuture<>();
        p.batchExecute(wrap(docs), f::complete);
        List<IngestDocumentWrapper> results = f.get(10, TimeUnit.SECONDS);
        assertEquals(docs.size(), results.size());
        IngestDocumentWrapper[] bySlot = new IngestDocumentWrapper[docs.size()];
        for (IngestDocumentWrapper w : results) {
            assertNull(bySlot[w.getSlot()], "slot reported twice");
            bySlot[w.getSlot()] = w;
        }
        return bySlot;
    }

    private static void assertEncoded(IngestDocumentWrapper w, String expectedText) {
        assertNull(w.getException(), () -> "unexpected failure: " + w.getException());
        IngestDocument d = w.getIngestDocument();
        assertEquals(List.of((float) expectedText.length(), 1f), d.getFieldValue("sesa_dense", List.class));
        assertEquals(Map.of("k_" + expectedText.replace(' ', '_'), 0.5f), d.getFieldValue("sesa_concepts", Map.class));
        assertEquals(List.of(expectedText), d.getFieldValue("sesa_concept_labels", List.class));
        assertEquals(Map.of("dense", "fake-dense@1", "concepts", "fake-concepts@2"), d.getFieldValue("sesa_model", Map.class));
        assertEquals(expectedText.length() > 20, d.getFieldValue("sesa_truncated", Boolean.class));
        assertEquals("encoded", d.getFieldValue("sesa_status", String.class));
    }

    private static void assertFailed(IngestDocumentWrapper w, String... fragments) {
        assertNotNull(w.getException(), "expected a failure");
        String msg = w.getException().getMessage();
        for (String f : fragments) {
            assertTrue(msg.contains(f), () -> "[" + msg + "] should contain [" + f + "]");
        }
        assertFalse(w.getIngestDocument().hasField("sesa_dense"), "failed document must not carry vectors");
    }

    @Test
    void batchesByBatchSizeAndKeepsOrder() throws Exception {
        SesaEncodeProcessor p = processor("batch_size", 4);
        List<IngestDocument> docs = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            docs.add(doc("d" + i, "title", "title " + i, "text", "text " + i));
        }
        IngestDocumentWrapper[] out = run(p, docs);
        assertEquals(3, service.encoding.calls.get(), "ceil(10/4) Encode calls");
        List<String> sent = new ArrayList<>();
        service.encoding.requests.forEach(r -> sent.addAll(r.getTextsList()));
        sent.sort(null);
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            expected.add("title " + i + "\ntext " + i);
        }
        List<String> sortedExpected = new ArrayList<>(expected);
        sortedExpected.sort(null);
        assertEquals(sortedExpected, sent);
        for (var r : service.encoding.requests) {
            // within a call, texts follow document order
            List<String> texts = r.getTextsList();
            for (int i = 1; i < texts.size(); i++) {
                assertTrue(expected.indexOf(texts.get(i - 1)) < expected.indexOf(texts.get(i)));
            }
            assertEquals(org.sesa.inference.v1.TextKind.TEXT_KIND_PASSAGE, r.getOptions().getKind());
        }
        for (int i = 0; i < 10; i++) {
            assertEncoded(out[i], expected.get(i));
        }
        assertTrue(service.authorizations.stream().allMatch("Bearer s3cret"::equals), service.authorizations.toString());
    }

    @Test
    void resultsComeBackInInputOrderEvenWhenALaterSubBatchFinishesFirst() throws Exception {
        service.encoding.delay(150);
        SesaEncodeProcessor p = processor("batch_size", 2);
        List<IngestDocument> docs = List.of(doc("1", "title", "a"), doc("2", "title", "b"), doc("3", "title", 3), doc("4"));
        CompletableFuture<List<IngestDocumentWrapper>> f = new CompletableFuture<>();
        p.batchExecute(wrap(docs), f::complete);
        List<IngestDocumentWrapper> out = f.get(10, TimeUnit.SECONDS);
        // the second sub-batch fails locally at once, the first waits for the server
        assertEquals(List.of(0, 1, 2, 3), out.stream().map(IngestDocumentWrapper::getSlot).toList());
        assertEncoded(out.get(0), "a");
        assertFailed(out.get(2), "must be a string");
        assertFailed(out.get(3), "missing");
    }

    @Test
    void severalMappingsShareOneCall() throws Exception {
        Map<String, Object> cfg = new HashMap<>(Map.of("field_map", Map.of("title", "t", "text", "b"), "top_k_concepts", 7, "top_labels", 3));
        SesaEncodeProcessor p = new SesaEncodeProcessorFactory(fake::client, ModelMetaLookup.NONE, MappingFixtures.FITS).create(Map.of(), null, null, cfg);
        IngestDocumentWrapper[] out = run(p, List.of(doc("1", "title", "a", "text", "bb"), doc("2", "title", "ccc", "text", "dddd")));
        assertEquals(1, service.encoding.calls.get());
        assertEquals(4, service.encoding.requests.get(0).getTextsCount());
        assertEquals(7, service.encoding.requests.get(0).getOptions().getTopKConcepts());
        assertEquals(3, service.encoding.requests.get(0).getOptions().getTopLabels());
        assertEquals(List.of(1f, 1f), out[0].getIngestDocument().getFieldValue("t_dense", List.class));
        assertEquals(List.of(2f, 1f), out[0].getIngestDocument().getFieldValue("b_dense", List.class));
        assertEquals(List.of(4f, 1f), out[1].getIngestDocument().getFieldValue("b_dense", List.class));
    }

    @Test
    void aDocumentKeepsTheDefaultNumberOfConceptsUnlessTheOptionSaysOtherwise() throws Exception {
        run(processor(), List.of(doc("1", "title", "a")));
        assertEquals(SesaEncodeProcessorFactory.DEFAULT_TOP_K_CONCEPTS, service.encoding.requests.get(0).getOptions().getTopKConcepts());
        assertEquals(128, SesaEncodeProcessorFactory.DEFAULT_TOP_K_CONCEPTS);
        Map<String, Object> cfg = new HashMap<>(Map.of("field_map", Map.of("title", "t"), "top_k_concepts", 0));
        SesaEncodeProcessor serverDefault = new SesaEncodeProcessorFactory(fake::client, ModelMetaLookup.NONE, MappingFixtures.FITS).create(Map.of(), null, null, cfg);
        run(serverDefault, List.of(doc("2", "title", "b")));
        assertEquals(0, service.encoding.requests.get(1).getOptions().getTopKConcepts(), "0 leaves it to the server");
    }

    @Test
    void retriesUnavailableAndResourceExhaustedThenSucceeds() throws Exception {
        service.encoding.failNext(Status.UNAVAILABLE.withDescription("warming up"), 2).failNext(Status.RESOURCE_EXHAUSTED.withDescription("queue full"), 1);
        IngestDocumentWrapper[] out = run(processor(), List.of(doc("1", "title", "hello")));
        assertEquals(4, service.encoding.calls.get());
        assertEncoded(out[0], "hello");
    }

    @Test
    void retriesExhaustedFailsEveryDocumentOfTheSubBatch() throws Exception {
        service.encoding.failNext(Status.UNAVAILABLE.withDescription("down"), 10);
        IngestDocumentWrapper[] out = run(processor(), List.of(doc("1", "title", "a"), doc("2", "title", "b")));
        assertEquals(4, service.encoding.calls.get(), "1 attempt + 3 retries");
        for (IngestDocumentWrapper w : out) {
            assertFailed(w, "UNAVAILABLE", "down", "4 attempt(s)", "retries exhausted");
            assertEquals(RestStatus.SERVICE_UNAVAILABLE, ExceptionsHelper.status(w.getException()));
        }
    }

    @Test
    void nonRetryableErrorIsNotRetried() throws Exception {
        service.encoding.failNext(Status.INVALID_ARGUMENT.withDescription("too many texts"), 1);
        IngestDocumentWrapper[] out = run(processor(), List.of(doc("1", "title", "a")));
        assertEquals(1, service.encoding.calls.get());
        assertFailed(out[0], "INVALID_ARGUMENT", "too many texts");
    }

    @Test
    void deadlineExceededFailsAllDocumentsWithReason() throws Exception {
        service.encoding.hang();
        long start = System.nanoTime();
        IngestDocumentWrapper[] out = run(processor("timeout", "200ms"), List.of(doc("1", "title", "a"), doc("2", "title", "b")));
        assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start) < 5_000);
        for (IngestDocumentWrapper w : out) {
            assertFailed(w, "deadline of 200ms exceeded", "DEADLINE_EXCEEDED");
            assertEquals(RestStatus.GATEWAY_TIMEOUT, ExceptionsHelper.status(w.getException()));
        }
    }

    @Test
    void perItemErrorFailsOnlyThatDocument() throws Exception {
        IngestDocumentWrapper[] out = run(processor(), List.of(doc("1", "title", "good"), doc("2", "title", "bad"), doc("3", "text", "fine")));
        assertEquals(1, service.encoding.calls.get());
        assertEncoded(out[0], "good");
        assertFailed(out[1], "INVALID_ARGUMENT", "text [bad] is not allowed", "document [2]");
        assertEncoded(out[2], "fine");
    }

    @Test
    void missingSourceWithIgnoreMissing() throws Exception {
        IngestDocumentWrapper[] out = run(
            processor("ignore_missing", true),
            List.of(doc("1"), doc("2", "title", "   ", "text", ""), doc("3", "title", "x"), doc("4", "sesa_dense", List.of(9f), "title", null))
        );
        assertEquals(1, service.encoding.calls.get());
        assertEquals(List.of("x"), service.encoding.requests.get(0).getTextsList());
        for (int i : new int[] { 0, 1, 3 }) {
            assertNull(out[i].getException());
            IngestDocument d = out[i].getIngestDocument();
            assertEquals("missing_source", d.getFieldValue("sesa_status", String.class));
            assertFalse(d.hasField("sesa_dense"), "no (stale) vectors on a missing_source document");
        }
        assertEncoded(out[2], "x");
    }

    @Test
    void allMissingNeedsNoCall() throws Exception {
        IngestDocumentWrapper[] out = run(processor("ignore_missing", true), List.of(doc("1")));
        assertEquals(0, service.encoding.calls.get());
        assertEquals("missing_source", out[0].getIngestDocument().getFieldValue("sesa_status", String.class));
    }

    @Test
    void missingSourceWithoutIgnoreMissingFailsThatDocument() throws Exception {
        IngestDocumentWrapper[] out = run(processor(), List.of(doc("1", "other", "x"), doc("2", "text", "ok"), doc("3", "title", " \n")));
        assertFailed(out[0], "[title, text]", "missing, null or blank", "document [1]", "ignore_missing");
        assertInstanceOf(IllegalArgumentException.class, out[0].getException());
        assertEncoded(out[1], "ok");
        assertFailed(out[2], "missing, null or blank");
        assertEquals(List.of("ok"), service.encoding.requests.get(0).getTextsList());
    }

    @Test
    void nonStringSourceFailsThatDocument() throws Exception {
        IngestDocumentWrapper[] out = run(processor(), List.of(doc("1", "title", 42), doc("2", "title", List.of("a")), doc("3", "title", "ok")));
        assertFailed(out[0], "field [title]", "must be a string", "Integer");
        assertFailed(out[1], "field [title]", "must be a string");
        assertEncoded(out[2], "ok");
    }

    @Test
    void modelMismatchFailsUnlessAllowed() throws Exception {
        expectedModels = Map.of("dense", "other-model@9", "concepts", "fake-concepts@2");
        IngestDocumentWrapper[] out = run(processor(), List.of(doc("1", "title", "a")));
        assertFailed(out[0], "other-model@9", "allow_model_change", "index [idx]");

        out = run(processor("allow_model_change", true), List.of(doc("1", "title", "a")));
        assertEncoded(out[0], "a");

        expectedModels = Map.of("dense", "fake-dense@1");
        out = run(processor(), List.of(doc("1", "title", "a")));
        assertEncoded(out[0], "a");

        expectedModels = "fake-dense@1";
        out = run(processor(), List.of(doc("1", "title", "a")));
        assertEncoded(out[0], "a");
    }

    @Test
    void singleDocumentAsyncExecute() throws Exception {
        SesaEncodeProcessor p = processor();
        CompletableFuture<Object[]> f = new CompletableFuture<>();
        p.execute(doc("1", "title", "solo"), (d, e) -> f.complete(new Object[] { d, e }));
        Object[] r = f.get(10, TimeUnit.SECONDS);
        assertNull(r[1]);
        assertEncoded(new IngestDocumentWrapper(0, 0, (IngestDocument) r[0], null), "solo");

        service.encoding.failNext(Status.PERMISSION_DENIED.withDescription("bad token"), 1);
        CompletableFuture<Object[]> g = new CompletableFuture<>();
        p.execute(doc("2", "title", "solo"), (d, e) -> g.complete(new Object[] { d, e }));
        Object[] r2 = g.get(10, TimeUnit.SECONDS);
        assertNull(r2[0]);
        assertTrue(((Exception) r2[1]).getMessage().contains("bad token"));

        assertThrows(UnsupportedOperationException.class, () -> p.execute(doc("3", "title", "x")));
    }

    @Test
    void handlerThatThrowsIsCalledOnlyOnce() throws Exception {
        SesaEncodeProcessor p = processor();
        java.util.concurrent.atomic.AtomicInteger calls = new java.util.concurrent.atomic.AtomicInteger();
        List<Exception> failures = new java.util.concurrent.CopyOnWriteArrayList<>();
        CompletableFuture<Void> firstCall = new CompletableFuture<>();
        p.execute(doc("1", "title", "solo"), (d, e) -> {
            calls.incrementAndGet();
            if (e != null) {
                failures.add(e);
            }
            firstCall.complete(null);
            throw new IllegalStateException("handler blew up");
        });
        firstCall.get(10, TimeUnit.SECONDS);
        // A second (wrong) completion would come right after the first, on the same callback thread.
        Thread.sleep(300);
        assertEquals(1, calls.get(), "the ingest handler must be completed exactly once, failures: " + failures);
        assertTrue(failures.isEmpty(), () -> "the handler's own exception must not come back as the document's failure: " + failures);
    }

    @Test
    void upstreamFailuresPassThrough() throws Exception {
        SesaEncodeProcessor p = processor();
        IllegalStateException upstream = new IllegalStateException("earlier processor failed");
        List<IngestDocumentWrapper> in = List.of(
            new IngestDocumentWrapper(0, 0, doc("1", "title", "a"), upstream),
            new IngestDocumentWrapper(1, 0, doc("2", "title", "b"), null)
        );
        CompletableFuture<List<IngestDocumentWrapper>> f = new CompletableFuture<>();
        p.batchExecute(in, f::complete);
        List<IngestDocumentWrapper> out = f.get(10, TimeUnit.SECONDS);
        assertEquals(upstream, out.get(0).getException());
        assertEncoded(out.get(1), "b");
        assertEquals(List.of("b"), service.encoding.requests.get(0).getTextsList());
    }

    @Test
    void anIndexThatCannotHoldTheOutputFailsEveryDocumentBeforeAnyCall() throws Exception {
        targetMappings = (index, names) -> MappingVerdict.of("index [" + index + "]", Map.of("sesa_dense", Map.of("type", "float")), names, null);
        IngestDocumentWrapper[] out = run(processor("ignore_missing", true), List.of(doc("1", "title", "a"), doc("2")));
        assertEquals(0, service.encoding.calls.get(), "no text is sent for an index that cannot hold the vectors");
        for (IngestDocumentWrapper w : out) {
            assertFailed(
                w,
                "[sesa_encode] index [idx] cannot hold the SESA fields of target [sesa]",
                "[sesa_dense] is mapped as [float], must be [knn_vector] with method.engine [lucene]",
                "[sesa_concepts] is not mapped, must be [rank_features]",
                "[sesa_status] is not mapped, must be [keyword]",
                "Fix: create the index with `sesa index create idx` (or map a `sesa_text` field), or name it `sesa-*` so the template applies"
            );
            assertInstanceOf(IllegalArgumentException.class, w.getException());
            assertEquals(RestStatus.BAD_REQUEST, ExceptionsHelper.status(w.getException()));
            assertFalse(w.getIngestDocument().hasField("sesa_status"), "nothing is written, not even the status");
            assertFalse(w.getIngestDocument().hasField("sesa_concepts"));
        }
    }

    @Test
    void vectorsOfAnotherDimensionThanTheIndexMapsFailTheDocument() throws Exception {
        targetMappings = (index, names) -> MappingVerdict.of("index [" + index + "]", MappingFixtures.sesaProperties(names.prefix(), 384), names, null);
        IngestDocumentWrapper[] out = run(processor(), List.of(doc("1", "title", "a")));
        assertEquals(1, service.encoding.calls.get());
        assertFailed(out[0], "[sesa_dense] is a knn_vector of dimension [384], but the inference server's encoder makes vectors of dimension [2]", "document [1]");
        assertEquals(RestStatus.BAD_REQUEST, ExceptionsHelper.status(out[0].getException()));
    }

    @Test
    void eachIndexIsCheckedOncePerSubBatchAndOnlyItsDocumentsFail() throws Exception {
        java.util.concurrent.atomic.AtomicInteger asked = new java.util.concurrent.atomic.AtomicInteger();
        targetMappings = (index, names) -> {
            asked.incrementAndGet();
            return "idx".equals(index) ? MappingFixtures.FITS.verdict(index, names) : MappingVerdict.of("index [" + index + "]", Map.of(), names, null);
        };
        IngestDocument elsewhere = new IngestDocument("my-docs", "9", null, null, null, new HashMap<>(Map.of("title", "z")));
        IngestDocumentWrapper[] out = run(processor(), List.of(doc("1", "title", "a"), elsewhere, doc("2", "title", "b"), doc("3", "title", "c")));
        assertEquals(2, asked.get(), "one verdict per index and prefix");
        assertEncoded(out[0], "a");
        assertFailed(out[1], "index [my-docs] cannot hold", "sesa index create my-docs");
        assertEncoded(out[2], "b");
        assertEquals(List.of("a", "b", "c"), service.encoding.requests.get(0).getTextsList(), "the refused document's text is not sent");
    }

    @Test
    void withoutATimeoutItWaitsTheNodesIngestDeadlineNotTheSearchOne() throws Exception {
        assertEquals(TimeValue.timeValueSeconds(5), fake.client().defaultTimeout());
        SesaEncodeProcessor p = processor();
        assertNull(p.getTimeout());
        service.encoding.hang();
        IngestDocumentWrapper[] out = run(p, List.of(doc("1", "title", "a")));
        assertFailed(out[0], "deadline of 2s exceeded", "DEADLINE_EXCEEDED");
    }
}
