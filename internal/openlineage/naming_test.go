package openlineage

import "testing"

func TestDatasetURN(t *testing.T) {
	for _, c := range []struct {
		namespace, name, want string
	}{
		{"postgres://db.example.com:5432", "shop.public.orders", "urn:mesh:dataset:postgres:db.example.com:5432/shop.public.orders"},
		{"s3://lake", "/raw/orders", "urn:mesh:dataset:s3:lake/raw/orders"},
		{"s3://lake/", "raw/orders", "urn:mesh:dataset:s3:lake/raw/orders"},
		{"bigquery", "proj.sales.orders", "urn:mesh:dataset:bigquery:proj.sales.orders"},
		{"file", "/data/orders.csv", "urn:mesh:dataset:file:/data/orders.csv"},
		{"arn:aws:glue:eu-west-1:123", "table/db/orders", "urn:mesh:dataset:arn:aws:glue:eu-west-1:123/table/db/orders"},
		{"jdbc:postgresql://h:5432", "db.t", "urn:mesh:dataset:jdbc-postgresql:h:5432/db.t"},
		{"Snowflake://ACME", "DB.SCHEMA.T", "urn:mesh:dataset:snowflake:ACME/DB.SCHEMA.T"},
		{"file", "/data/my orders 100%.csv", "urn:mesh:dataset:file:/data/my%20orders%20100%25.csv"},
		{"kafka://b:9092", "a::b", "urn:mesh:dataset:kafka:b%3A9092/a%3A%3Ab"},
		{"duckdb:///tmp/dev.duckdb", "dev.main.orders", "urn:mesh:dataset:duckdb:/tmp/dev.duckdb/dev.main.orders"},
	} {
		got, err := DatasetURN(c.namespace, c.name)
		if err != nil || got != c.want {
			t.Errorf("DatasetURN(%q, %q) = %q, %v; want %q", c.namespace, c.name, got, err, c.want)
		}
	}
	for _, c := range [][2]string{{"", "x"}, {"s3://b", " "}, {"://", "x"}} {
		if got, err := DatasetURN(c[0], c[1]); err == nil {
			t.Errorf("DatasetURN(%q, %q) = %q, want an error", c[0], c[1], got)
		}
	}
}

func TestJobURN(t *testing.T) {
	got, err := JobURN("sales", "dbt-sales", "model.shop.orders")
	if want := "urn:mesh:job:sales:dbt-sales/model.shop.orders"; err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	if _, err := JobURN("sales", "", "x"); err == nil {
		t.Error("empty namespace accepted")
	}
}

func TestNamespaceRules(t *testing.T) {
	rules, err := ParseNamespaceRules("dbt-sales=sales, airflow://sales-*=sales, *finance*=finance")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ namespace, emitter, want string }{
		{"dbt-sales", "platform", "sales"},
		{"airflow://sales-prod", "platform", "sales"},
		{"spark-finance-eu", "platform", "finance"},
		{"dbt-sales-2", "platform", "platform"},
		{"anything", "marketing", "marketing"},
	} {
		if got := rules.Domain(c.namespace, c.emitter); got != c.want {
			t.Errorf("Domain(%q, %q) = %q, want %q", c.namespace, c.emitter, got, c.want)
		}
	}
	for _, bad := range []string{"x", "=sales", "a=Sales"} {
		if _, err := ParseNamespaceRules(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
