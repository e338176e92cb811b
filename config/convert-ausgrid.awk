# convert-ausgrid.awk: Ausgrid "Solar home electricity data" (one customer, columns
# timestamp,GC,GG in average kW per interval) to the mgx measured-data format
# `timestamp,home,load_wh,pv_wh` for N homes built from the one measured home.
#
#   awk -v homes=3 -f config/convert-ausgrid.awk ausgrid-customer12-2011-2012.csv > data.csv
#
# Variables (-v): homes (default 3), group (default "ausgrid": homes are <group>-1 ..
# <group>-N), rows_per_day (default 48, i.e. 30-minute data).
# Home k gets the series shifted by k-1 days: at row i it takes row i + (k-1)*rows_per_day,
# wrapping round to the start, so home 1 is the measured home itself and every home has the
# same yearly totals. Energy per interval in Wh = round(kW * 1000 * 24 / rows_per_day), i.e.
# kW * 500 for half-hours. Timestamps are copied unchanged (local clock time of the data set).
# POSIX awk only (Debian's mawk is enough). Source data: CC BY 4.0, see docs/measured-data.md.

BEGIN {
    FS = ","
    if (homes == "") homes = 3
    if (group == "") group = "ausgrid"
    if (rows_per_day == "") rows_per_day = 48
    homes += 0; rows_per_day += 0
    if (homes < 1 || rows_per_day < 1) { print "convert-ausgrid: bad homes or rows_per_day" > "/dev/stderr"; bad = 1; exit 1 }
    wh_per_kw = 1000 * 24 / rows_per_day
    n = 0
}

{ sub(/\r$/, "") }

# header (",GC,GG" or "timestamp,GC,GG"): check the column order, then skip
NR == 1 {
    if ($2 != "GC" || $3 != "GG") {
        print "convert-ausgrid: expected the header ',GC,GG' (timestamp, consumption kW, generation kW)" > "/dev/stderr"
        bad = 1; exit 1
    }
    next
}

NF == 0 { next }

{
    if (NF != 3 || $2 !~ /^[0-9.eE+-]+$/ || $3 !~ /^[0-9.eE+-]+$/) {
        print "convert-ausgrid: line " NR ": expected timestamp,GC,GG" > "/dev/stderr"
        bad = 1; exit 1
    }
    ts[n] = $1; gc[n] = $2 + 0; gg[n] = $3 + 0
    n++
}

function wh(kw,   x) {
    x = kw * wh_per_kw
    if (x < 0) x = 0 # a tiny negative reading (meter noise) is no energy
    return int(x + 0.5)
}

END {
    if (bad) exit 1
    if (n == 0) { print "convert-ausgrid: no data rows" > "/dev/stderr"; exit 1 }
    print "timestamp,home,load_wh,pv_wh"
    for (i = 0; i < n; i++)
        for (k = 1; k <= homes; k++) {
            j = (i + (k - 1) * rows_per_day) % n
            printf "%s,%s-%d,%d,%d\n", ts[i], group, k, wh(gc[j]), wh(gg[j])
        }
}
