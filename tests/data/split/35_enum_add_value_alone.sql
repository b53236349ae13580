-- Prisma enum change
ALTER TYPE "Role" ADD VALUE 'ADMIN';
