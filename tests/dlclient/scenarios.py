"""The calls of datalab-api.md, area by area, as a Data Lab user would make them."""

import io


def auth(a, ac, qc, sc, rc, attempt):
    o = {}
    o["alive"] = [ac.isAlive(a["base"] + "/auth"), qc.isAlive(qc.get_svc_url()), sc.isAlive(sc.get_svc_url())]
    o["bad_login"] = ac.login(a["user"], "wrong-password")
    token = ac.login(a["user"], a["password"])
    o["token"] = token
    o["whoami"] = ac.whoAmI()
    o["valid_token"] = ac.isValidToken(token)
    o["valid_user"] = [ac.isValidUser(a["user"]), ac.isValidUser("no_such_user_x")]
    o["valid_password"] = [ac.isValidPassword(a["user"], a["password"]), ac.isValidPassword(a["user"], "nope")]
    o["user_logged_in"] = ac.isUserLoggedIn(a["user"])
    o["token_logged_in"] = ac.isTokenLoggedIn(token)
    o["has_access"] = ac.hasAccess(a["user"], "vos://x.csv")
    o["anon_login"] = ac.login("anonymous")
    o["logout"] = ac.logout(token)
    o["valid_after_logout"] = ac.isValidToken(token)
    return o


def query(a, ac, qc, sc, rc, attempt):
    o = {}
    token = ac.login(a["user"], a["password"])
    sirius = "SELECT hip, ra, dec, hpmag, b_v FROM hipparcos.main WHERE hip = 32349"
    o["csv"] = qc.query(sql=sirius)
    o["csv_positional"] = qc.query(sirius)
    o["csv_token_positional"] = qc.query(token, sirius)
    df = qc.query(sql=sirius, fmt="pandas")
    o["pandas"] = {"cols": list(df.columns), "hpmag": float(df.hpmag[0]), "rows": len(df)}
    t = qc.query(sql=sirius, fmt="table")
    o["table"] = {"cols": t.colnames, "hip": int(t["hip"][0])}
    arr = qc.query(sql="SELECT hip, hpmag FROM hipparcos.main WHERE hip IN (32349, 91262) ORDER BY hip", fmt="array")
    o["array"] = arr.tolist()
    sa = qc.query(sql=sirius, fmt="structarray")
    o["structarray"] = list(sa.dtype.names)
    o["votable"] = qc.query(sql=sirius, fmt="votable")[:200]
    o["tsv"] = qc.query(sql=sirius, fmt="tsv")
    o["adql"] = qc.query(adql="SELECT TOP 3 hip, hpmag FROM hipparcos.main ORDER BY hpmag")
    o["special"] = qc.query(sql="SELECT 'NaN'::float8 AS a, 'Infinity'::float8 AS b, NULL::int AS c")
    o["out_local"] = qc.query(sql=sirius, out="./local_out.csv")
    o["local_file"] = open("local_out.csv").read()
    o["out_mydb"] = qc.query(sql="SELECT hip, ra, dec FROM hipparcos.main WHERE hpmag < 2", out="mydb://bright", drop=True)
    o["mydb_count"] = qc.query(sql="SELECT count(*) AS n FROM mydb://bright")
    o["xmatch"] = qc.query(sql=(
        "SELECT b.hip, g.source_id, q3c_dist(b.ra, b.dec, g.ra, g.dec) * 3600 AS dist_arcsec "
        "FROM mydb://bright AS b JOIN LATERAL (SELECT g.* FROM gaia_dr3.gaia_source_bright g "
        "WHERE q3c_join(b.ra, b.dec, g.ra, g.dec, 60/3600.0) "
        "ORDER BY q3c_dist(b.ra, b.dec, g.ra, g.dec) ASC LIMIT 1) AS g ON true ORDER BY b.hip"), fmt="pandas").shape
    o["out_vos"] = qc.query(sql=sirius, out="vos://sirius.csv")
    o["error"] = attempt(qc.query, sql="SELECT nope FROM hipparcos.main")
    o["error_table"] = attempt(qc.query, sql="SELECT * FROM no_such.table")
    # asynchronous
    jobid = qc.query(sql="SELECT hip FROM hipparcos.main WHERE hpmag < 1 ORDER BY hip", async_=True)
    o["jobid"] = jobid
    o["wait"] = qc.wait(jobid, wait=0.5)
    o["status"] = qc.status(jobid)
    o["results"] = qc.results(jobid, delete=False)
    o["async_wait"] = qc.query(sql=sirius, async_=True, wait=True, poll=0.5, fmt="pandas").shape
    bad = qc.query(sql="SELECT 1/0", async_=True)
    o["bad_wait"] = qc.wait(bad, wait=0.5)
    o["bad_error"] = qc.error(bad)
    slow = qc.query(sql="SELECT pg_sleep(30)", async_=True)
    import time
    time.sleep(1)
    o["abort"] = qc.abort(slow)
    o["abort_status"] = qc.status(slow)
    o["jobs_text"] = qc.jobs()
    o["jobs_json"] = attempt(qc.jobs, format="json")
    o["timeout"] = attempt(qc.query, sql="SELECT pg_sleep(5)", timeout=2)
    o["schema"] = qc.schema()
    o["schema_table"] = qc.schema("hipparcos.main")
    o["profiles"] = qc.list_profiles()
    o["services"] = qc.services()
    o["tbl_stat"] = qc.query(sql="SELECT schema, tbl_name, nrows FROM tbl_stat ORDER BY 1")
    return o


def mydb(a, ac, qc, sc, rc, attempt):
    import pandas as pd

    o = {}
    ac.login(a["user"], a["password"])
    o["flush"] = qc.mydb_flush()
    df = pd.DataFrame({"id": [1, 2, 3], "ra": [101.2885, 279.2341, 10.68], "dec": [-16.7131, 38.7830, 41.27]})
    o["import_df"] = qc.mydb_import("targets", df)
    with open("targets.csv", "w") as fh:
        df.to_csv(fh, index=False)
    o["import_file"] = qc.mydb_import("targets2", "targets.csv")
    o["list"] = qc.mydb_list()
    o["list_table"] = qc.mydb_list("targets")
    o["create"] = qc.mydb_create("made", "id,integer\nname,text\n", drop=True)
    o["insert"] = qc.mydb_insert("made", "id,name\n1,one\n2,two\n")
    o["made"] = qc.query(sql="SELECT * FROM mydb://made ORDER BY id")
    o["index"] = qc.mydb_index("targets", q3c="ra,dec", cluster=True)
    o["index_col"] = qc.mydb_index("targets", "id")
    o["xmatch"] = qc.query(sql="SELECT t.id, h.hip FROM mydb://targets t JOIN hipparcos.main h "
                              "ON q3c_join(t.ra, t.dec, h.ra, h.dec, 0.01) ORDER BY t.id")
    o["rename"] = qc.mydb_rename("targets2", "targets3")
    o["copy"] = qc.mydb_copy("targets3", "targets4")
    o["truncate"] = qc.mydb_truncate("targets4")
    o["count4"] = qc.query(sql="SELECT count(*) AS n FROM mydb://targets4")
    o["drop"] = qc.mydb_drop("targets4")
    o["drop_missing"] = qc.mydb_drop("targets4")
    o["invalid_name"] = attempt(qc.mydb_drop, "Bad-Name")
    o["list_after"] = qc.mydb_list()
    return o


def storage(a, ac, qc, sc, rc, attempt):
    o = {}
    ac.login(a["user"], a["password"])
    with open("hello.txt", "w") as fh:
        fh.write("hello starbox\n")
    o["put"] = sc.put("hello.txt", "vos://hello.txt", verbose=False)
    o["ls"] = sc.ls("vos://")
    o["ls_long"] = sc.ls("vos://", format="long")
    o["stat"] = sc.stat("vos://hello.txt")
    o["stat_missing"] = sc.stat("vos://missing.txt")
    o["access"] = sc.access("vos://hello.txt")
    o["get"] = sc.get("vos://hello.txt", "")
    o["get_to"] = sc.get("vos://hello.txt", "./fetched.txt", verbose=False)
    o["fetched"] = open("fetched.txt").read()
    o["mkdir"] = sc.mkdir("vos://dir1")
    o["mkdir_again"] = sc.mkdir("vos://dir1")
    o["cp"] = sc.cp("vos://hello.txt", "vos://dir1/copy.txt")
    o["mv"] = sc.mv("vos://dir1/copy.txt", "vos://dir1/moved.txt")
    o["ls_dir"] = sc.ls("vos://dir1")
    o["ln"] = sc.ln("vos://link.txt", "vos://hello.txt")
    o["tag"] = sc.tag("vos://hello.txt", "a tag")
    o["public_put"] = sc.put("hello.txt", "vos://public/shared.txt", verbose=False)
    o["rm"] = sc.rm("vos://dir1/moved.txt")
    o["rmdir"] = sc.rmdir("vos://dir1")
    o["rm_missing"] = sc.rm("vos://nope.txt")
    o["saveAs"] = sc.saveAs("some text", "vos://saved.txt")
    o["profiles"] = sc.list_profiles()
    o["ls_final"] = sc.ls("vos://")
    return o


def sharing(a, ac, qc, sc, rc, attempt):
    """The second user reads the first user's public/ and nothing else."""
    o = {}
    ac.login(a["other"], a["password"])
    owner = a["user"]
    o["read_public"] = sc.get(f"{owner}://public/shared.txt", "")
    o["read_private"] = attempt(sc.get, f"{owner}://hello.txt", "")
    with open("intruder.txt", "w") as fh:
        fh.write("x")
    o["write_public"] = sc.put("intruder.txt", f"{owner}://public/intruder.txt", verbose=False)
    o["ls_owner_public"] = sc.ls(f"{owner}://public")
    o["mydb_other"] = attempt(qc.query, sql=f"SELECT * FROM mydb_{owner}.targets")
    return o


def res(a, ac, qc, sc, rc, attempt):
    """resClient's user calls, as a Data Lab notebook makes them."""
    o = {}
    token = ac.login(a["user"], a["password"])
    o["fields"] = rc.listFields()
    o["created"] = rc.getUser(token, a["user"], "created")
    o["email_before"] = rc.getUser(token, a["user"], "email")
    o["other"] = attempt(rc.getUser, token, a["other"], "email")
    o["unknown"] = attempt(rc.getUser, token, a["user"], "shoe_size")
    o["anonymous"] = attempt(rc.getUser, ac.login("anonymous"), a["user"], "email")
    o["set"] = attempt(rc.setUser, token, a["user"], "email", "x@y.org")  # dl's own setUser drops its value
    o["create"] = rc.createUser("newcomer", "pw-123456", "n@example.org", "New Comer", "Somewhere")
    o["reset_other"] = attempt(rc.passwordReset, token, a["other"], "stolen-pw-1")
    o["reset"] = attempt(rc.passwordReset, token, a["user"], a["new_password"])
    o["old_token_valid"] = ac.isValidToken(token)
    o["login_new"] = ac.login(a["user"], a["new_password"]).startswith(a["user"] + ".")
    o["login_old"] = ac.login(a["user"], a["password"])
    return o
