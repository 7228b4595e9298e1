package identity.spark;

import org.apache.spark.sql.api.java.UDF2;

/** DuckDB's damerauLevenshtein as a Spark SQL function (NULL in, NULL out). */
public final class DamerauLevenshtein implements UDF2<String, String, Integer> {
    @Override
    public Integer call(String a, String b) {
        return a == null || b == null ? null : DuckDBStrings.damerauLevenshtein(a, b);
    }
}
