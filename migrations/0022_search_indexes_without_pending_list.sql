-- GIN indexes buffer new entries in a pending list that every search then reads from start to end
-- until VACUUM (or the list reaching gin_pending_list_limit, 4 MB) merges it. During a
-- 100,000-product import the search indexes held 8,000 pending entries (216 pages of the heading
-- index, 498 of the document's), read by every search. Search documents are read far more often
-- than written, so their indexes take each entry into place as it is written (fastupdate off), and
-- what an earlier import left pending is merged now.
alter index catalog.search_documents_text set (fastupdate = off);
alter index catalog.search_documents_heading set (fastupdate = off);
alter index catalog.search_documents_categories set (fastupdate = off);
alter index catalog.search_documents_attributes set (fastupdate = off);
alter index catalog.search_documents_tags set (fastupdate = off);
alter index catalog.search_terms_trigram set (fastupdate = off);
select gin_clean_pending_list(index)
  from unnest(array[
    'catalog.search_documents_text', 'catalog.search_documents_heading',
    'catalog.search_documents_categories', 'catalog.search_documents_attributes',
    'catalog.search_documents_tags', 'catalog.search_terms_trigram'
  ]::regclass[]) index;
