module example.com/shopfront/catalog

go 1.26
