-- A text search within categories finds both in one lookup of the full-text index.
--
-- The category filter was `category_ids && $ids` on the array's own GIN index, combined with the
-- text's index by a BitmapAnd. A bitmap takes one entry per matching row before the AND, so a
-- broad category cost its whole size whatever the text: on 100,000 products (bench:commerce) a
-- root category's 24,731 rows took 10 ms to gather where the text's 1,501 took 0.4 ms, and the
-- AND removed nothing (every "sweater" is apparel). Now each search document carries its
-- categories (with their ancestors, as category_ids does) as lexemes of their own, `#c` and the
-- id's 32 hex digits, in `heading` and `document`; a text search within categories matches
-- `words & (#c… | #c…)`, and GIN intersects the posting lists itself, so only the rows matching
-- both reach the bitmap. Browsing a category without text still reads category_ids' index.
--
-- No text a tenant writes can make such a lexeme: the parser of to_tsvector splits on `#`, and a
-- shopper's query keeps letters and digits only (src/catalog/search/query-text.ts). Ranking uses
-- the words alone.

-- The lexemes of a document's categories.
create function catalog.category_lexemes(ids uuid[]) returns tsvector
language sql immutable parallel safe as $$
  select array_to_tsvector(array(select '#c' || replace(id::text, '-', '') from unnest(ids) as id))
$$;

-- A query matching any of these categories' lexemes (category_lexemes' own); null (matching
-- nothing) for no ids.
create function catalog.category_query(ids uuid[]) returns tsquery
language sql immutable parallel safe as $$
  select string_agg(quote_literal(lexeme), ' | ')::tsquery
  from unnest(tsvector_to_array(catalog.category_lexemes(ids))) as lexeme
$$;

-- The documents indexed before (src/catalog/search/indexer.ts writes the lexemes from now on).
update catalog.search_documents
  set heading = heading || catalog.category_lexemes(category_ids),
    document = document || catalog.category_lexemes(category_ids)
  where cardinality(category_ids) > 0;
