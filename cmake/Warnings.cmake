# Strict warnings for our own targets only; generated code is compiled without them.
set(FL_WARNINGS
	-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
	-Wformat=2 -Wvla)

function(fl_strict target)
	target_compile_options(${target} PRIVATE ${FL_WARNINGS})
endfunction()
