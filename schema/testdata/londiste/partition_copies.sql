-- londiste differential scenario: what a partition takes from its parent (one statement per line)
create table public.ev (id int primary key, ts timestamptz not null, v text default 'dflt' check (v <> 'bad'), n int);
create index ev_ts_idx on public.ev (ts);
create index ev_n_idx on public.ev (n) where n > 0;
create function public.noop() returns trigger language plpgsql as $$ begin return new; end $$;
create trigger ev_trg before insert on public.ev for each row execute procedure public.noop();
grant select, insert on public.ev to pgq_writer;
select londiste.create_partition('public.ev', 'public.ev_2026_12', 'id', 'ts', '2026-12-02 10:00+00', 'month');
select londiste.create_partition('public.ev', 'public.ev_k2', 'id,n', 'ts', '2026-12-02 10:00+00', 'day');
select londiste.create_partition('ev', 'ev_x', 'id', 'ts', '2026-12-02 10:00+00', 'day');
select a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attislocal, a.attinhcount from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum where a.attrelid = 'public.ev_2026_12'::regclass and a.attnum > 0 order by a.attnum;
select c.relname, k.conname, pg_get_constraintdef(k.oid), k.conislocal from pg_constraint k join pg_class c on c.oid = k.conrelid where c.relname like 'ev\_%' order by 1, 2;
select indexrelid::regclass, pg_get_indexdef(indexrelid) from pg_index where indrelid in (select oid from pg_class where relname like 'ev\_%') order by 1;
select tgrelid::regclass, tgname from pg_trigger where not tgisinternal and tgrelid in (select oid from pg_class where relnamespace = 'public'::regnamespace) order by 1,2;
select relname, relacl, relowner::regrole from pg_class where relname like 'ev%' and relkind = 'r' order by 1;
