package identity.spark;

import org.apache.spark.sql.api.java.UDF2;

/** DuckDB's jaroWinkler as a Spark SQL function (NULL in, NULL out). */
public final class JaroWinklerSimilarity implements UDF2<String, String, Double> {
    @Override
    public Double call(String a, String b) {
        return a == null || b == null ? null : DuckDBStrings.jaroWinkler(a, b);
    }
}
