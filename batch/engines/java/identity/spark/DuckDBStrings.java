package identity.spark;

import java.util.HashMap;
import java.util.Map;

/**
 * DuckDB's string similarity functions, bit for bit, for Spark SQL: the relink's model scores a
 * pair the same on either engine only if both compute the same similarity. Ported from
 * identity_graph/matching/scorer.py (tested against DuckDB there): Unicode code points,
 * rapidfuzz's Jaro, the Winkler step as one fused multiply-add.
 */
public final class DuckDBStrings {
    private DuckDBStrings() {}

    public static double jaro(String s1, String s2) {
        int[] a = s1.codePoints().toArray();
        int[] b = s2.codePoints().toArray();
        int[] p = a.length > b.length ? b : a;
        int[] t = a.length > b.length ? a : b;
        int lp = p.length, lt = t.length;
        if (lp == 0 || lt == 0) {
            return 0.0;
        }
        int window = Math.max(lt / 2 - 1, 0);
        boolean[] pFlags = new boolean[lp];
        int[] tMatched = new int[lt];
        int m = 0;
        for (int j = 0; j < lt; j++) {
            int lo = j > window ? j - window : 0;
            int hi = Math.min(j + window + 1, lp);
            for (int i = lo; i < hi; i++) {
                if (!pFlags[i] && p[i] == t[j]) {
                    pFlags[i] = true;
                    tMatched[m++] = t[j];
                    break;
                }
            }
        }
        if (m == 0) {
            return 0.0;
        }
        int k = 0, half = 0;
        for (int i = 0; i < lp; i++) {
            if (pFlags[i]) {
                if (p[i] != tMatched[k]) {
                    half++;
                }
                k++;
            }
        }
        int transpositions = half / 2;
        return ((double) m / lp + (double) m / lt + (double) (m - transpositions) / m) / 3.0;
    }

    public static double jaroWinkler(String s1, String s2) {
        double sim = jaro(s1, s2);
        if (sim > 0.7) {
            int[] a = s1.codePoints().limit(4).toArray();
            int[] b = s2.codePoints().limit(4).toArray();
            int prefix = 0;
            while (prefix < Math.min(a.length, b.length) && a[prefix] == b[prefix]) {
                prefix++;
            }
            if (prefix > 0) {
                sim = Math.fma(prefix * 0.1, 1.0 - sim, sim);
            }
        }
        return sim;
    }

    public static int levenshtein(String s1, String s2) {
        int[] a = s1.codePoints().toArray();
        int[] b = s2.codePoints().toArray();
        if (a.length < b.length) {
            int[] x = a; a = b; b = x;
        }
        int[] prev = new int[b.length + 1];
        for (int j = 0; j <= b.length; j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length; i++) {
            int[] cur = new int[b.length + 1];
            cur[0] = i;
            for (int j = 1; j <= b.length; j++) {
                cur[j] = Math.min(Math.min(prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }
            prev = cur;
        }
        return prev[b.length];
    }

    /** Unrestricted Damerau-Levenshtein (Lowrance-Wagner), as DuckDB. */
    public static int damerauLevenshtein(String s1, String s2) {
        int[] a = s1.codePoints().toArray();
        int[] b = s2.codePoints().toArray();
        int n1 = a.length, n2 = b.length, big = n1 + n2;
        Map<Integer, Integer> lastRow = new HashMap<>();
        int[][] d = new int[n1 + 2][n2 + 2];
        d[0][0] = big;
        for (int i = 0; i <= n1; i++) {
            d[i + 1][0] = big;
            d[i + 1][1] = i;
        }
        for (int j = 0; j <= n2; j++) {
            d[0][j + 1] = big;
            d[1][j + 1] = j;
        }
        for (int i = 1; i <= n1; i++) {
            int lastCol = 0;
            for (int j = 1; j <= n2; j++) {
                int k = lastRow.getOrDefault(b[j - 1], 0);
                int m = lastCol;
                int cost;
                if (a[i - 1] == b[j - 1]) {
                    cost = 0;
                    lastCol = j;
                } else {
                    cost = 1;
                }
                d[i + 1][j + 1] = Math.min(Math.min(d[i][j] + cost, d[i + 1][j] + 1),
                        Math.min(d[i][j + 1] + 1, d[k][m] + (i - k - 1) + 1 + (j - m - 1)));
            }
            lastRow.put(a[i - 1], i);
        }
        return d[n1 + 1][n2 + 1];
    }
}
