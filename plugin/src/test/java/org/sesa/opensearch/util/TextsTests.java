package org.sesa.opensearch.util;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TextsTests {

    @Test
    void blankMeansWhatPythonsIsspaceMeans() {
        // every one of these is str.isspace() in Python, where the inference server checks
        for (String s : new String[] { null, "", " ", "\t\n\r", "\u00a0", "\u2007", "\u202f", "\u0085", "\u001c\u001f", "\u2003\u3000", "\u2028\u2029" }) {
            assertTrue(Texts.isBlank(s), s == null ? "null" : s.codePoints().mapToObj(Integer::toHexString).toList().toString());
        }
        // and none of these is: zero-width characters, controls that are not spaces, BOM, letters
        for (String s : new String[] { "\u200b", "\u200d", "\u0000", "\u0001", "\ufeff", " a ", "\u00a0x" }) {
            assertFalse(Texts.isBlank(s), s.codePoints().mapToObj(Integer::toHexString).toList().toString());
        }
    }
}
