package org.sesa.opensearch.util;

/**
 * What counts as a blank text, defined exactly as the inference server defines it (Python's
 * {@code str.isspace}: bidirectional class WS, B or S, or general category Zs). Java's {@link String#isBlank}
 * disagrees on no-break spaces (U+00A0, U+2007, U+202F) and NEL (U+0085): with it, a title of only no-break
 * spaces was sent to the server, rejected there as whitespace-only, and failed its document instead of being
 * treated as missing.
 */
public final class Texts {

    private Texts() {}

    public static boolean isSpace(int codePoint) {
        byte dir = Character.getDirectionality(codePoint);
        return dir == Character.DIRECTIONALITY_WHITESPACE
            || dir == Character.DIRECTIONALITY_PARAGRAPH_SEPARATOR
            || dir == Character.DIRECTIONALITY_SEGMENT_SEPARATOR
            || Character.getType(codePoint) == Character.SPACE_SEPARATOR;
    }

    /** True for null, empty, or only space characters in the sense of {@link #isSpace}. */
    public static boolean isBlank(String s) {
        return s == null || s.codePoints().allMatch(Texts::isSpace);
    }
}
