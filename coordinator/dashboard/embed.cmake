# Embed the dashboard's files into a C file (cmake -P, from coordinator/CMakeLists.txt):
# -DDIR=coordinator/dashboard -DOUT=.../dashboard_assets.c. No build step beyond this:
# the files are served byte for byte as they are here (http.c).
set(entries "index.html|/|text/html" "dashboard.css|/dashboard.css|text/css"
	"dashboard.js|/dashboard.js|text/javascript" "favicon.svg|/favicon.svg|image/svg+xml")
set(text "/* Generated from coordinator/dashboard/ by embed.cmake: do not edit. */\n#include \"http_int.h\"\n\n")
set(table "")
set(i 0)
foreach(e IN LISTS entries)
	string(REPLACE "|" ";" parts "${e}")
	list(GET parts 0 file)
	list(GET parts 1 path)
	list(GET parts 2 type)
	file(READ "${DIR}/${file}" hex HEX)
	string(LENGTH "${hex}" n)
	math(EXPR n "${n} / 2")
	string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
	string(APPEND text "static const unsigned char asset${i}[] = {${bytes}0};\n")
	string(APPEND table "    {\"${path}\", \"${type}; charset=utf-8\", asset${i}, ${n}},\n")
	math(EXPR i "${i} + 1")
endforeach()
string(APPEND text "\nconst struct fl_http_asset fl_http_assets[] = {\n${table}};\nconst size_t fl_http_n_assets = ${i};\n")
file(WRITE "${OUT}.tmp" "${text}")
file(RENAME "${OUT}.tmp" "${OUT}")
