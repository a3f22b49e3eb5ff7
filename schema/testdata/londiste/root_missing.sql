-- londiste differential scenario: what a root could add (one statement per line)
select * from pgq_node.register_location('q','r1','dbname=r1',false);
select * from pgq_node.create_node('q','root','r1','w',null,null,null);
create table public.b (id int primary key);
create table public.a (id int primary key, s serial);
create table public.nokey (v text);
create schema zz; create table zz.t (id int primary key); create sequence zz.s;
create view public.v as select 1 x;
create unlogged table public.u (id int primary key);
create temp table tt (id int);
create table public.part (id int, primary key (id)) partition by range (id);
create table public.part_1 partition of public.part for values from (1) to (10);
select * from londiste.local_show_missing('q');
select * from londiste.local_add_table('q', 'public.b');
select * from londiste.local_add_seq('q', 'public.a_s_seq');
select * from londiste.local_show_missing('q');
